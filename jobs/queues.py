"""Purpose-named queues and the one way to enqueue (with timeouts and TTLs always set)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from rq import Queue, Retry
from rq.job import Job

from app.extensions import get_redis

# name → (default job timeout in seconds); the worker listens to them in this order
QUEUES: dict[str, int] = {
    "urgent": 60,  # SLA checks, alerts
    "default": 300,
    "notifications": 120,  # e-mail and webhook deliveries
    "runbooks": 3600,  # per-tenant runbook work
    "maintenance": 1800,
}
RESULT_TTL = 3600
FAILURE_TTL = 7 * 86400


def queue_name(name: str) -> str:
    """The Redis-level name: prefixed, so test runs and deployments sharing a Redis never mix."""
    return f"{current_app.config['RQ_QUEUE_PREFIX']}-{name}"


def get_queue(name: str) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(queue_name(name), connection=get_redis(), default_timeout=QUEUES[name])


def all_queues() -> list[Queue]:
    return [get_queue(name) for name in QUEUES]


def enqueue(queue: str, func: Callable[..., Any], *args: Any, job_id: str | None = None,
            retry: Retry | None = None, timeout: int | None = None, **kwargs: Any) -> Job:
    return get_queue(queue).enqueue(
        func, *args, job_id=job_id, retry=retry, job_timeout=timeout or QUEUES[queue],
        result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL, **kwargs)
