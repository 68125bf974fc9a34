"""Runbook jobs: the fan-out, one job per part, and the watchdog that resumes or fails parts
whose workers died and re-queues work whose jobs were lost."""

from __future__ import annotations

import logging
import uuid

from flask import current_app
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import text

from app.extensions import db, get_redis
from app.runbooks import execution
from jobs.context import final_attempt, with_app_context
from jobs.queues import enqueue
from jobs.schedule import periodic

log = logging.getLogger(__name__)

LIVE_JOB_STATES = {"queued", "started", "scheduled", "deferred"}
GRACE_SECONDS = 60  # how long queued work may wait for a worker before the watchdog looks for its job


def fan_out_job_id(run_id: int) -> str:
    return f"{current_app.config['RQ_QUEUE_PREFIX']}-run-{run_id}-fan-out"


def queue_fan_out(run_id: int) -> None:
    """Queue the run's fan-out; if Redis is down the run stays queued and the watchdog queues it."""
    job_id = fan_out_job_id(run_id)
    try:
        _forget(job_id)
        enqueue("runbooks", fan_out, run_id, job_id=job_id, retry=Retry(max=3, interval=[5, 30, 120]), timeout=600)
    except Exception:
        log.warning("could not queue the fan-out of run %s; the watchdog will", run_id, exc_info=True)


def queue_part(part_id: int, *, delay_seconds: int | None = None) -> str | None:
    job_id = f"{current_app.config['RQ_QUEUE_PREFIX']}-run-part-{part_id}-{uuid.uuid4().hex[:8]}"
    db.session.execute(text("UPDATE operation_run_parts SET job_id = :job_id, queued_at = now() WHERE id = :id"),
                       {"job_id": job_id, "id": part_id})
    db.session.commit()
    retries = max(current_app.config["RUNBOOK_MAX_ATTEMPTS"] - 1, 0)
    retry = Retry(max=retries, interval=[10, 60, 300][:retries] or 10) if retries else None
    try:
        if delay_seconds:
            from datetime import timedelta

            from jobs.queues import FAILURE_TTL, RESULT_TTL, get_queue

            get_queue("runbooks").enqueue_in(timedelta(seconds=delay_seconds), run_part, part_id, job_id=job_id,
                                             retry=retry, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
        else:
            enqueue("runbooks", run_part, part_id, job_id=job_id, retry=retry)
    except Exception:
        log.warning("could not queue part %s; the watchdog will", part_id, exc_info=True)
        return None
    return job_id


def _forget(job_id: str) -> None:
    """Drop a finished or failed job of this id, so the id can be queued again."""
    try:
        Job.fetch(job_id, connection=get_redis()).delete()
    except NoSuchJobError:
        pass


def _alive(job_id: str | None) -> bool:
    if not job_id:
        return False
    try:
        return Job.fetch(job_id, connection=get_redis()).get_status(refresh=True) in LIVE_JOB_STATES
    except NoSuchJobError:
        return False


@with_app_context
def fan_out(run_id: int) -> int:
    part_ids = execution.fan_out(run_id)
    for part_id in part_ids:
        queue_part(part_id)
    return len(part_ids)


@with_app_context
def run_part(part_id: int) -> str:
    outcome = execution.run_part(part_id, final_attempt=final_attempt())
    if outcome.state == "busy":  # another run works this tenant right now: try again shortly
        queue_part(part_id, delay_seconds=15)
    return outcome.state


@with_app_context
@periodic(name="runbook-watchdog", every_seconds=30, queue="urgent")
def watchdog() -> dict[str, int]:
    """Find work whose worker or job was lost, and resume it (or fail it after its attempts)."""
    config = current_app.config
    report = {"fan_outs": 0, "requeued": 0, "failed": 0, "completed": 0}
    unqueued_runs = db.session.scalars(text(
        "SELECT id FROM operation_runs WHERE status = 'queued' AND created_at < now() - make_interval(secs => :grace)"
    ), {"grace": GRACE_SECONDS}).all()
    silent_parts = db.session.scalars(text("""
        SELECT id FROM operation_run_parts
        WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => :stale) ORDER BY id
    """), {"stale": config["RUNBOOK_STALE_SECONDS"]}).all()
    waiting_parts = db.session.execute(text("""
        SELECT p.id, p.job_id FROM operation_run_parts p JOIN operation_runs r ON r.id = p.run_id
        WHERE p.status = 'queued' AND r.status = 'running' AND p.queued_at < now() - make_interval(secs => :grace)
        ORDER BY p.id
    """), {"grace": GRACE_SECONDS}).all()
    settled_runs = db.session.scalars(text("""
        SELECT r.id FROM operation_runs r WHERE r.status = 'running'
          AND NOT EXISTS (SELECT 1 FROM operation_run_parts p WHERE p.run_id = r.id AND p.status IN ('queued', 'running'))
    """)).all()
    db.session.rollback()

    for run_id in unqueued_runs:
        if execution.cancel_unstarted(run_id):
            report["completed"] += 1
        elif not _alive(fan_out_job_id(run_id)):
            queue_fan_out(run_id)
            report["fan_outs"] += 1
    for part_id in silent_parts:
        state = execution.recover_lost_part(part_id, max_attempts=config["RUNBOOK_MAX_ATTEMPTS"])
        if state == "requeued":
            queue_part(part_id)
        if state in report:
            report[state] += 1
    for part_id, job_id in waiting_parts:
        if not _alive(job_id):
            queue_part(part_id)
            report["requeued"] += 1
    for run_id in settled_runs:
        report["completed"] += int(execution.maybe_complete(run_id))
    if any(report.values()):
        log.warning("runbook watchdog: %s", report)
    return report
