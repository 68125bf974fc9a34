"""Queue backlog and failed jobs: depth per queue, the failed-job list, retry and delete.

Failed jobs live in each queue's FailedJobRegistry (a sorted set). The list pages with an offset
over the registries' ordered ids, newest failure first, one queue after the other in the order of
`QUEUES`; filters are applied to the jobs read, so a filtered page reads at most `SCAN_LIMIT` ids
and says where to continue. The list never shows a job's arguments in full or a stack trace:
only the function, a short summary of the arguments and the exception's last line.

Every retry or delete is audited, and the audit row is written (flushed) before Redis changes,
so a failing audit write changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from app.actors import Actor
from app.audit import service as audit_service
from app.audit.service import SECRET_MARKERS
from app.errors import NotAllowed, NotFound
from app.extensions import db, get_redis
from jobs.queues import QUEUES, all_queues, get_queue, queue_name

PAGE_SIZE = 50
SCAN_LIMIT = 2000  # ids one filtered page may read before it stops and offers "continue"
SCAN_CHUNK = 200
RETRY_ALL_LIMIT = 500
ARGS_SUMMARY_LENGTH = 120
ERROR_LINE_LENGTH = 300
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MANAGE = "system.jobs.manage"


@dataclass(frozen=True)
class QueueDepth:
    name: str  # our short name ("urgent"), not the prefixed Redis name
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int


@dataclass(frozen=True)
class FailedJobFilters:
    queue: str | None = None
    function: str | None = None  # part of the function's dotted name, case-insensitive
    since: datetime | None = None  # failed (ended) at or after

    @property
    def narrows(self) -> bool:
        """Whether jobs must be read to know if they match (the queue alone picks registries)."""
        return bool(self.function or self.since)


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    function: str
    args_summary: str
    enqueued_at: datetime | None
    ended_at: datetime | None
    error: str  # the exception's last line, e.g. "RuntimeError: boom"
    attempts: int


@dataclass(frozen=True)
class FailedJobPage:
    jobs: list[FailedJob]
    offset: int
    next_offset: int | None  # where the next page starts; None = nothing after this page
    total: int  # ids in the selected registries (before the function/time filters)
    scanned_to: int  # ids read up to here; less than total when a filtered scan stopped early


@dataclass(frozen=True)
class RetryAllOutcome:
    queue: str
    requeued: int
    skipped: int  # gone or already requeued by someone else in the meantime
    remaining: int  # still failed after this batch


def short_name(redis_name: str) -> str:
    """`<prefix>-urgent` → `urgent` (names that are not ours stay as they are)."""
    return {queue_name(name): name for name in QUEUES}.get(redis_name, redis_name)


def queue_depths() -> list[QueueDepth]:
    """Jobs per state in each of our queues, in one Redis round trip."""
    queues = all_queues()
    client = get_redis()
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.zcard(queue.started_job_registry.key)
            pipe.zcard(queue.scheduled_job_registry.key)
            pipe.zcard(queue.deferred_job_registry.key)
            pipe.zcard(queue.failed_job_registry.key)
        counts = pipe.execute()
    return [QueueDepth(name, *counts[i * 5:i * 5 + 5]) for i, name in enumerate(QUEUES)]


# -- reading failed jobs -----------------------------------------------------------------------------

def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _secret_name(name: str) -> bool:
    return any(marker in name.lower() for marker in SECRET_MARKERS)


def args_summary(args: tuple | list, kwargs: dict) -> str:
    """A short repr of the arguments: values of secret-looking keyword names are never shown."""
    parts = [repr(value) for value in args]
    parts += [f"{key}=…" if _secret_name(str(key)) else f"{key}={value!r}" for key, value in kwargs.items()]
    return _clip(", ".join(parts), ARGS_SUMMARY_LENGTH)


def last_line(exc_string: str | None) -> str:
    """The exception's own line (the traceback's last non-empty line), never the stack."""
    lines = [line.strip() for line in (exc_string or "").strip().splitlines() if line.strip()]
    return _clip(lines[-1], ERROR_LINE_LENGTH) if lines else ""


def _call(job: Job) -> tuple[str, str]:
    """(function name, argument summary); unreadable payloads say so instead of failing the page."""
    try:
        return job.func_name or "?", args_summary(job.args or (), job.kwargs or {})
    except Exception:  # a payload that no longer unpickles (a class that is gone) is still listed
        return "(unreadable)", ""


def _failures(jobs: list[Job]) -> dict[str, tuple[str, int]]:
    """Per job: (last line of the latest recorded exception, attempts), one Redis round trip."""
    client = get_redis()
    with client.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.xrevrange(Result.get_key(job.id), "+", "-")
        streams = pipe.execute()
    executions = {getattr(Result.Type, name) for name in ("SUCCESSFUL", "FAILED", "STOPPED", "RETRIED")
                  if hasattr(Result.Type, name)}  # RETRIED is newer than RQ 2.0
    found = {}
    for job, entries in zip(jobs, streams, strict=True):
        exc_string, attempts = None, 0
        for result_id, payload in entries:  # newest first
            try:
                result = Result.restore(job.id, result_id.decode(), payload, connection=client)
            except Exception:  # a result this RQ cannot read (newer type, return value gone) is skipped
                continue
            attempts += result.type in executions
            if exc_string is None and result.exc_string:
                exc_string = result.exc_string
        # jobs that failed under older RQ versions kept the traceback on the job itself
        exc_string = exc_string or getattr(job, "_exc_info", None)
        retries = getattr(job, "number_of_retries", None) or 0
        found[job.id] = (last_line(exc_string), max(attempts, retries + 1))
    return found


def _fetch(ids: list[str]) -> list[Job | None]:
    """The jobs of `ids` in one round trip (None for those gone)."""
    client = get_redis()
    try:
        return Job.fetch_many(ids, connection=client)
    except NoSuchJobError:  # a half-written hash among them: read them one by one
        jobs: list[Job | None] = []
        for job_id in ids:
            try:
                jobs.append(Job.fetch(job_id, connection=client))
            except NoSuchJobError:
                jobs.append(None)
        return jobs


def _registries(queue: str | None) -> list[tuple[str, FailedJobRegistry]]:
    names = [queue] if queue else list(QUEUES)
    return [(name, get_queue(name).failed_job_registry) for name in names]


def _matches(job: Job, function: str, filters: FailedJobFilters) -> bool:
    if filters.function and filters.function.lower() not in function.lower():
        return False
    ended = _aware(job.ended_at)
    return not (filters.since and (ended is None or ended < filters.since))


def list_failed_jobs(*, filters: FailedJobFilters, offset: int = 0, limit: int = PAGE_SIZE,
                     scan_limit: int = SCAN_LIMIT) -> FailedJobPage:
    """One page of failed jobs starting at `offset` (an index into the selected registries' ids)."""
    if filters.queue and filters.queue not in QUEUES:
        raise NotFound(f"There is no queue {filters.queue!r}.")
    client = get_redis()
    registries = _registries(filters.queue)
    with client.pipeline(transaction=False) as pipe:
        for _, registry in registries:
            pipe.zcard(registry.key)
        sizes = pipe.execute()
    total = sum(sizes)
    position, scanned = max(0, offset), 0
    picked: list[tuple[str, Job, str, str]] = []
    while position < total and len(picked) < limit and scanned < scan_limit:
        index, local = _locate(position, sizes)
        name, registry = registries[index]
        wanted = SCAN_CHUNK if filters.narrows else limit - len(picked)
        count = min(wanted, sizes[index] - local, scan_limit - scanned)
        ids = [raw.decode() for raw in client.zrange(registry.key, local, local + count - 1, desc=True)]
        if not ids:  # the registry shrank while we read it
            sizes[index] = local
            total = sum(sizes)
            continue
        for job in _fetch(ids):
            position += 1
            scanned += 1
            if job is None:  # its hash expired; RQ's cleanup drops the id later
                continue
            function, summary = _call(job)
            if _matches(job, function, filters):
                picked.append((name, job, function, summary))
                if len(picked) == limit:
                    break
    failures = _failures([job for _, job, _, _ in picked])
    jobs = [FailedJob(id=job.id, queue=name, function=function, args_summary=summary,
                      enqueued_at=_aware(job.enqueued_at), ended_at=_aware(job.ended_at),
                      error=failures[job.id][0], attempts=failures[job.id][1])
            for name, job, function, summary in picked]
    return FailedJobPage(jobs=jobs, offset=max(0, offset), next_offset=position if position < total else None,
                         total=total, scanned_to=position)


def _locate(position: int, sizes: list[int]) -> tuple[int, int]:
    """The registry and the index within it of a position in the concatenated ids."""
    for index, size in enumerate(sizes):
        if position < size:
            return index, position
        position -= size
    raise IndexError(position)


# -- acting on failed jobs -----------------------------------------------------------------------------

def _require(actor: Actor) -> None:
    if not actor.can(MANAGE):
        raise NotAllowed("Your platform role does not allow managing jobs.")


def _failed_registry(queue: str) -> FailedJobRegistry:
    if queue not in QUEUES:
        raise NotFound(f"There is no queue {queue!r}.")
    return get_queue(queue).failed_job_registry


def _failed_job(queue: str, job_id: str) -> tuple[FailedJobRegistry, Job]:
    """The job, if `job_id` is a failed job of our `queue`; NotFound otherwise (nothing is changed)."""
    registry = _failed_registry(queue)
    missing = NotFound(f"No failed job {job_id!r} in the {queue} queue (it may have been retried or deleted).")
    if not JOB_ID_RE.match(job_id or "") or job_id not in registry:
        raise missing
    try:
        job = Job.fetch(job_id, connection=registry.connection)
    except NoSuchJobError:
        raise missing from None
    if job.origin != registry.name:
        raise missing
    return registry, job


def _audit(actor: Actor, *, operation: str, job_id: str | None, queue: str, **context) -> None:
    new_status = {"retry": "queued", "delete": "deleted"}.get(operation)
    audit_service.record(actor=actor, action="update", ref_type="job", ref_id=job_id,
                         field_deltas={"status": ["failed", new_status]} if new_status else None,
                         context={"operation": operation, "queue": queue, **context})
    db.session.flush()  # the audit row is in before anything changes in Redis (halt on audit failure)


def retry_failed_job(*, actor: Actor, queue: str, job_id: str) -> str:
    """Put one failed job back on its queue; returns its function's name, for the message."""
    _require(actor)
    _, job = _failed_job(queue, job_id)
    function, _ = _call(job)
    _audit(actor, operation="retry", job_id=job.id, queue=queue, function=function)
    try:
        job.requeue()
    except (InvalidJobOperation, NoSuchJobError):
        raise NotFound(f"Job {job_id!r} is no longer failed (someone else retried or deleted it).") from None
    db.session.commit()
    return function


def retry_all_failed_jobs(*, actor: Actor, queue: str, limit: int = RETRY_ALL_LIMIT) -> RetryAllOutcome:
    """Requeue up to `limit` failed jobs of a queue, oldest failure first."""
    _require(actor)
    registry = _failed_registry(queue)
    client = registry.connection
    ids = [raw.decode() for raw in client.zrange(registry.key, 0, limit - 1)]
    _audit(actor, operation="retry_all", job_id=None, queue=queue, selected=len(ids), limit=limit,
           job_ids=ids[:50])
    requeued = skipped = 0
    for job_id in ids:
        try:
            registry.requeue(job_id)
            requeued += 1
        except (InvalidJobOperation, NoSuchJobError):
            skipped += 1
    db.session.commit()
    return RetryAllOutcome(queue=queue, requeued=requeued, skipped=skipped, remaining=client.zcard(registry.key))


def delete_failed_job(*, actor: Actor, queue: str, job_id: str) -> str:
    """Remove one failed job and its results for good; returns its function's name."""
    _require(actor)
    registry, job = _failed_job(queue, job_id)
    function, _ = _call(job)
    _audit(actor, operation="delete", job_id=job.id, queue=queue, function=function)
    registry.remove(job, delete_job=True)
    db.session.commit()
    return function
