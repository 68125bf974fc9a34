"""Service health for /system: the database, Redis, RQ workers, the scheduler and queue depth.

Each check answers for itself: what is down is reported with the reason, and the rest is still
checked. The Redis-backed checks (workers, scheduler, queues) are skipped when Redis did not
answer its ping, so a dead Redis costs one timeout, not four.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from flask import current_app
from rq import Worker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.scheduler import RQScheduler
from rq.worker_registration import get_keys as worker_keys
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db, get_redis
from app.system.queues import QueueDepth, queue_depths, short_name
from jobs.queues import QUEUES, all_queues, get_queue, queue_name

log = logging.getLogger(__name__)

REDIS_DOWN = "Redis is not answering."


@dataclass(frozen=True)
class DatabaseHealth:
    ok: bool
    latency_ms: float | None = None
    version: str | None = None
    size_bytes: int | None = None
    connections: int | None = None  # sessions open on this database
    active: int | None = None  # of which are running a statement right now
    error: str | None = None


@dataclass(frozen=True)
class RedisHealth:
    ok: bool
    latency_ms: float | None = None
    version: str | None = None
    used_memory: str | None = None  # as Redis puts it, e.g. "1.52M"
    error: str | None = None


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str | None
    pid: int | None
    state: str
    current_job_id: str | None
    last_heartbeat: datetime | None
    queues: tuple[str, ...]
    successful: int
    failed: int
    stale: bool  # no heartbeat within the worker TTL: probably dead without saying so


@dataclass(frozen=True)
class WorkersHealth:
    workers: list[WorkerInfo] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and any(not w.stale for w in self.workers)

    @property
    def live(self) -> int:
        return sum(not w.stale for w in self.workers)


@dataclass(frozen=True)
class PeriodicBooking:
    name: str
    queue: str | None
    every_seconds: int | None
    next_run: datetime | None  # None: no run is booked
    job_id: str | None


@dataclass(frozen=True)
class SchedulerHealth:
    locks: dict[str, str] = field(default_factory=dict)  # queue → who holds its scheduler lock
    unlocked: list[str] = field(default_factory=list)  # our queues no scheduler looks after
    periodic: list[PeriodicBooking] = field(default_factory=list)
    error: str | None = None

    @property
    def running(self) -> bool:
        return bool(self.locks)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unlocked and all(p.next_run for p in self.periodic)


@dataclass(frozen=True)
class QueuesHealth:
    queues: list[QueueDepth] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ServiceHealth:
    checked_at: datetime
    database: DatabaseHealth
    redis: RedisHealth
    workers: WorkersHealth
    scheduler: SchedulerHealth
    queues: QueuesHealth

    @property
    def ok(self) -> bool:
        return all((self.database.ok, self.redis.ok, self.workers.ok, self.scheduler.ok, self.queues.ok))


def _reason(error: BaseException) -> str:
    """Why a check failed, in one short line (the driver's first line, never a connection URL)."""
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = detail[0] if detail else ""
    text_ = f"{error.__class__.__name__}: {first}" if first else error.__class__.__name__
    return text_ if len(text_) <= 200 else text_[:199] + "…"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def check_database() -> DatabaseHealth:
    """Does PostgreSQL answer, how fast, and how big and busy is our database?"""
    try:
        db.session.execute(text("SET LOCAL statement_timeout = 2000"))
        started = time.perf_counter()
        db.session.execute(text("SELECT 1"))
        latency = _ms(started)
        row = db.session.execute(text("""
            SELECT current_setting('server_version') AS version,
                   pg_database_size(current_database()) AS size,
                   count(*) AS connections,
                   count(*) FILTER (WHERE state = 'active') AS active
            FROM pg_stat_activity WHERE datname = current_database()
        """)).one()
        db.session.rollback()
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("health: database check failed: %s", error.__class__.__name__)
        return DatabaseHealth(ok=False, error=_reason(error))
    return DatabaseHealth(ok=True, latency_ms=latency, version=row.version, size_bytes=row.size,
                          connections=row.connections, active=row.active)


def check_redis() -> RedisHealth:
    """Does Redis answer its ping, how fast, which version, how much memory?"""
    client = get_redis()
    try:
        started = time.perf_counter()
        client.ping()
        latency = _ms(started)
        with client.pipeline(transaction=False) as pipe:
            pipe.info("server")
            pipe.info("memory")
            server, memory = pipe.execute()
    except redis.RedisError as error:
        log.warning("health: redis check failed: %s", error.__class__.__name__)
        return RedisHealth(ok=False, error=_reason(error))
    return RedisHealth(ok=True, latency_ms=latency, version=server.get("redis_version"),
                       used_memory=memory.get("used_memory_human"))


class _WorkerView(Worker):
    """A worker as read back from Redis. RQ's Worker raises the socket timeout of the connection
    it is given (to suit a worker's blocking dequeue); a web process must keep its short one."""

    def _set_connection(self, connection):
        return connection


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def list_workers(*, now: datetime | None = None) -> list[WorkerInfo]:
    """Workers registered on any of our queues (not other deployments' sharing the Redis)."""
    client = get_redis()
    now = now or datetime.now(UTC)
    keys: set[str] = set()
    for queue in all_queues():
        keys |= {k.decode() if isinstance(k, bytes) else k for k in worker_keys(queue=queue)}
    workers = []
    for key in sorted(keys):
        worker = _WorkerView.find_by_key(key, connection=client)
        if worker is None:  # its hash expired; RQ has dropped the key from the registry
            continue
        heartbeat = _aware(worker.last_heartbeat)
        state = worker.get_state()
        workers.append(WorkerInfo(
            name=worker.name, hostname=worker.hostname, pid=worker.pid,
            state=str(state) if state and state != "?" else "unknown",
            current_job_id=worker.get_current_job_id(), last_heartbeat=heartbeat,
            queues=tuple(short_name(name) for name in worker.queue_names()),
            successful=worker.successful_job_count, failed=worker.failed_job_count,
            stale=heartbeat is None or now - heartbeat > timedelta(seconds=DEFAULT_WORKER_TTL)))
    return workers


def _periodic_jobs() -> dict:
    """Every periodic job the code defines: each job module registers its own when imported."""
    import jobs
    from jobs.schedule import registered

    for module in pkgutil.iter_modules(jobs.__path__):
        try:
            importlib.import_module(f"jobs.{module.name}")
        except Exception:  # a broken job module must not take the health page down with it
            log.exception("health: cannot import jobs.%s", module.name)
    return registered()


def check_scheduler() -> SchedulerHealth:
    """Who holds the RQ scheduler lock of each queue, and the next booked run of each periodic job.

    Periodic runs are booked in the ScheduledJobRegistry as `<prefix>-periodic-<name>-<slot>`.
    """
    client = get_redis()
    names = list(QUEUES)
    holders = client.mget([RQScheduler.get_locking_key(queue_name(name)) for name in names])
    locks = {name: (holder.decode(errors="replace") if isinstance(holder, bytes) else str(holder))
             for name, holder in zip(names, holders, strict=True) if holder is not None}
    periodic = _periodic_jobs()
    marker = f"{current_app.config['RQ_QUEUE_PREFIX']}-periodic-"
    booked: dict[str, tuple[float, str, str]] = {}  # name → (time, job id, queue)
    for name in sorted({job.queue for job in periodic.values()} | set(names)):
        key = get_queue(name).scheduled_job_registry.key
        for raw_id, score in client.zscan_iter(key, match=f"{marker}*", count=500):
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            job_name = job_id[len(marker):].rsplit("-", 1)[0]
            if job_name not in booked or score < booked[job_name][0]:
                booked[job_name] = (score, job_id, name)
    rows = []
    for job_name in sorted(set(periodic) | set(booked)):
        job = periodic.get(job_name)
        score, job_id, queue = booked.get(job_name, (None, None, job.queue if job else None))
        rows.append(PeriodicBooking(name=job_name, queue=queue, every_seconds=job.every_seconds if job else None,
                                    next_run=datetime.fromtimestamp(score, UTC) if score is not None else None,
                                    job_id=job_id))
    return SchedulerHealth(locks=locks, unlocked=[name for name in names if name not in locks], periodic=rows)


def _guarded(what: str, check, unavailable, *, redis_ok: bool):
    """Run a Redis-backed check, or say why it could not be run."""
    if not redis_ok:
        return unavailable(error=REDIS_DOWN)
    try:
        return check()
    except (redis.RedisError, ValueError) as error:  # ValueError: data RQ could not parse
        log.warning("health: %s check failed: %s", what, error.__class__.__name__)
        return unavailable(error=_reason(error))


def gather_health() -> ServiceHealth:
    """Every check of the health page, each one degrading on its own."""
    database = check_database()
    redis_health = check_redis()
    ok = redis_health.ok
    return ServiceHealth(
        checked_at=datetime.now(UTC), database=database, redis=redis_health,
        workers=_guarded("workers", lambda: WorkersHealth(workers=list_workers()), WorkersHealth, redis_ok=ok),
        scheduler=_guarded("scheduler", check_scheduler, SchedulerHealth, redis_ok=ok),
        queues=_guarded("queues", lambda: QueuesHealth(queues=queue_depths()), QueuesHealth, redis_ok=ok))
