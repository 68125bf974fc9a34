"""Periodic jobs on RQ's scheduler: each run books the next one, under a deterministic job id.

The job id names the time slot (`<prefix>-periodic-<name>-<slot>`) and is enqueued with `unique=True`,
so however many workers start or however many runs overlap, each slot runs once. Every worker
books the next slot of every periodic job when it starts, so a lost booking heals itself.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from rq.exceptions import DuplicateJobError

from jobs.queues import FAILURE_TTL, RESULT_TTL, get_queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    every_seconds: int
    queue: str
    func: Callable[..., Any]


_periodic: dict[str, Periodic] = {}


def periodic(*, name: str, every_seconds: int, queue: str):
    """Register a job function to run every `every_seconds`; its runs book their successor first."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            book_next(_periodic[name])
            return fn(*args, **kwargs)

        _periodic[name] = Periodic(name=name, every_seconds=every_seconds, queue=queue, func=run)
        return run

    return decorator


def book_next(job: Periodic, *, now: float | None = None) -> str | None:
    """Schedule the next slot of `job`; returns its id, or None when that slot was already booked."""
    slot = int((now or time.time()) // job.every_seconds) + 1
    # job ids are global in Redis: the queue prefix keeps deployments (and test runs) apart
    job_id = f"{current_app.config['RQ_QUEUE_PREFIX']}-periodic-{job.name}-{slot}"
    try:
        get_queue(job.queue).enqueue_at(
            datetime.fromtimestamp(slot * job.every_seconds, UTC), job.func, job_id=job_id, unique=True,
            job_timeout=min(job.every_seconds, 3600), result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    except DuplicateJobError:
        return None
    return job_id


def book_all() -> list[str]:
    """Called when a worker starts: make sure every periodic job has its next run booked."""
    import jobs.alerting  # noqa: F401  (each module registers its periodic jobs)
    import jobs.communications  # noqa: F401
    import jobs.incidents  # noqa: F401
    import jobs.maintenance  # noqa: F401
    import jobs.runbooks  # noqa: F401

    return [job_id for job in _periodic.values() if (job_id := book_next(job))]


def registered() -> dict[str, Periodic]:
    return dict(_periodic)
