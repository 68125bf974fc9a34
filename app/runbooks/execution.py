"""Running a run: fan-out into parts, each part chunk by chunk under its tenant's lock, and the
last part completing the run with its outcome, audit event and (on failure) alert.

Every chunk commits its work, the part's cursor and counts, and the run's summary counts in one
transaction, so a part that is retried or resumed after its worker died never counts or applies a
row twice. Locks are PostgreSQL advisory locks, which the server releases when a worker's
connection dies, so a lock can always be taken again after a crash and never needs a timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, text

from app.actors import Actor
from app.audit import service as audit
from app.extensions import db
from app.runbooks import summary
from app.runbooks.catalog import RUNBOOKS
from app.runbooks.models import OperationRun, OperationRunPart
from app.runbooks.sanitize import FAILURE_LIMIT, FINDING_CODES, classify, failure_entry

log = logging.getLogger(__name__)

SCOPE_LOCK, TENANT_LOCK = 0x0F5D_0001, 0x0F5D_0002  # advisory lock namespaces (first key)
FINISHED_PARTS = ("succeeded", "failed", "cancelled")
ACTOR = Actor.system("system:runbooks")


def _lock_key(value: str) -> int:
    """A stable signed 32-bit key for an advisory lock's second half."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big", signed=True)


def tenant_lock_key(runbook_key: str, workspace_id: int, tenant_id: int | None) -> int:
    return _lock_key(f"{runbook_key}:{workspace_id}:{tenant_id or 0}")


def _append_failures(run_id: int, entries: list[dict]) -> None:
    if entries:
        db.session.execute(text("""
            UPDATE operation_runs SET failure_summary = CASE
                WHEN jsonb_array_length(failure_summary) >= :limit THEN failure_summary
                ELSE failure_summary || (SELECT coalesce(jsonb_agg(x), '[]'::jsonb) FROM (
                    SELECT x FROM jsonb_array_elements(CAST(:entries AS jsonb)) AS x
                    LIMIT :limit - jsonb_array_length(failure_summary)) AS kept)
            END, updated_at = now() WHERE id = :id
        """), {"id": run_id, "entries": json.dumps(entries), "limit": FAILURE_LIMIT})


# -- fan-out -----------------------------------------------------------------------------------------

def fan_out(run_id: int) -> list[int]:
    """Create the run's parts and mark it running; returns the part ids to queue (none if another
    fan-out of this scope holds the lock or the run is past this step)."""
    run = db.session.scalar(select(OperationRun).where(OperationRun.id == run_id).with_for_update()
                            .execution_options(populate_existing=True))
    if run is None or run.status != "queued":
        db.session.rollback()
        return []
    if not db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
                             {"ns": SCOPE_LOCK, "key": _lock_key(run.run_identity_hash)}):
        db.session.rollback()
        return []
    runbook = RUNBOOKS.get(run.type)
    if run.cancel_requested_at is not None:
        _complete(run, outcome="cancelled")
        db.session.commit()
        return []
    if runbook is None or (run.tenant_id is not None and not db.session.scalar(
            text("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = :t AND workspace_id = :w)"),
            {"t": run.tenant_id, "w": run.workspace_id})):
        code = "runbook.error" if runbook is None else "tenant.missing"
        _append_failures(run.id, [failure_entry(code, None if runbook else f"unknown runbook {run.type}",
                                                tenant_id=run.tenant_id)])
        db.session.refresh(run)
        _complete(run, outcome="blocked")
        db.session.commit()
        return []
    totals = runbook.work.part_totals(run.workspace_id, run.tenant_id)
    tenant_ids = list(totals)
    if tenant_ids:
        db.session.execute(text("""
            INSERT INTO operation_run_parts (run_id, tenant_id, total)
            SELECT :run_id, t, n FROM unnest(CAST(:tenants AS integer[]), CAST(:totals AS bigint[])) AS p(t, n)
            ON CONFLICT DO NOTHING
        """), {"run_id": run.id, "tenants": tenant_ids, "totals": list(totals.values())})
    run.status = "running"
    run.started_at = db.func.now()
    summary.increment(run.id, tenants=sum(1 for t in tenant_ids if t is not None), total=sum(totals.values()))
    db.session.flush()
    if not tenant_ids:  # a workspace without tenants: nothing to do is done
        db.session.refresh(run)
        _complete(run, outcome="succeeded")
    db.session.commit()
    return list(db.session.scalars(select(OperationRunPart.id).where(OperationRunPart.run_id == run.id)
                                   .order_by(OperationRunPart.id)))


# -- one part ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartOutcome:
    state: str  # succeeded | failed | cancelled | busy (someone holds the tenant lock) | finished (nothing to do)
    run_completed: bool = False


def run_part(part_id: int, *, final_attempt: bool = True,
             after_chunk: Callable[[OperationRunPart], None] | None = None) -> PartOutcome:
    """Work one part to the end (or until the run is cancelled), chunk by chunk.

    On an error the chunk in flight is rolled back; with attempts left the part goes back to
    `queued` and the error is re-raised for the queue to retry; on the final attempt the part
    fails with a sanitized reason and the run may complete.
    """
    part, run = _load(part_id)
    if part is None or part.status in FINISHED_PARTS or run.status == "completed":
        db.session.rollback()
        return PartOutcome("finished")
    runbook = RUNBOOKS[run.type]
    lock_connection = db.engine.connect()
    key = tenant_lock_key(run.type, run.workspace_id, part.tenant_id)
    try:
        if not lock_connection.scalar(text("SELECT pg_try_advisory_lock(:ns, :key)"),
                                      {"ns": TENANT_LOCK, "key": key}):
            db.session.rollback()
            return PartOutcome("busy")
        lock_connection.commit()  # the session-level lock outlives this transaction
        try:
            state = _work(part_id, runbook, after_chunk)
        except Exception as error:
            db.session.rollback()
            _record_error(part_id, error, final_attempt=final_attempt)
            if not final_attempt:
                raise
            state = "failed"
        finally:
            lock_connection.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": TENANT_LOCK, "key": key})
            lock_connection.commit()
    finally:
        lock_connection.close()
    return PartOutcome(state, run_completed=maybe_complete(run.id))


def _load(part_id: int) -> tuple[OperationRunPart | None, OperationRun | None]:
    part = db.session.scalar(select(OperationRunPart).where(OperationRunPart.id == part_id)
                             .execution_options(populate_existing=True))
    if part is None:
        return None, None
    run = db.session.scalar(select(OperationRun).where(OperationRun.id == part.run_id)
                            .execution_options(populate_existing=True))
    return part, run


def _work(part_id: int, runbook, after_chunk) -> str:
    part = db.session.scalar(select(OperationRunPart).where(OperationRunPart.id == part_id).with_for_update()
                             .execution_options(populate_existing=True))
    if part.status in FINISHED_PARTS:  # finished by another job between our first look and the lock
        db.session.rollback()
        return part.status
    run = db.session.get(OperationRun, part.run_id)
    part.status, part.attempts = "running", part.attempts + 1
    part.started_at = part.started_at or db.func.now()
    part.heartbeat_at = db.func.now()
    part.phase = part.phase or "working"
    db.session.commit()

    while True:
        cancelled = db.session.scalar(text("SELECT cancel_requested_at IS NOT NULL FROM operation_runs WHERE id = :id"),
                                      {"id": run.id})
        if cancelled:
            _finish_part(part, "cancelled")
            db.session.commit()
            return "cancelled"
        chunk = runbook.work.chunk(run.workspace_id, part.tenant_id, part.cursor)
        part.cursor = chunk.cursor
        part.processed += chunk.processed
        part.updated += chunk.updated
        part.skipped += chunk.skipped
        part.heartbeat_at = db.func.now()
        if chunk.problems:
            for entry in chunk.problems:
                entry["tenant_id"] = part.tenant_id
            part.failure = chunk.problems[0]
            _append_failures(run.id, chunk.problems)
        summary.increment(run.id, processed=chunk.processed, updated=chunk.updated, skipped=chunk.skipped)
        if chunk.done:
            state = "failed" if _found_problems(part) else "succeeded"
            _finish_part(part, state)
            if state == "failed":
                summary.increment(run.id, failed=1)
            db.session.commit()
            return state
        db.session.commit()
        if after_chunk:
            after_chunk(part)


def _found_problems(part: OperationRunPart) -> bool:
    return bool(part.failure) and part.failure.get("reason_code") in FINDING_CODES


def _keep_or_replace_failure(part: OperationRunPart, entry: dict) -> None:
    """An error replaces an earlier error, never a problem the work found (that decides the outcome)."""
    if not _found_problems(part):
        part.failure = entry


def _finish_part(part: OperationRunPart, state: str) -> None:
    part.status = state
    part.phase = "done"
    part.finished_at = db.func.now()
    part.heartbeat_at = db.func.now()


def _record_error(part_id: int, error: BaseException, *, final_attempt: bool) -> None:
    code, message = classify(error)
    log.warning("runbook part %s failed (%s): %s", part_id, code, message)
    part = db.session.scalar(select(OperationRunPart).where(OperationRunPart.id == part_id).with_for_update()
                             .execution_options(populate_existing=True))
    if part is None or part.status in FINISHED_PARTS:
        db.session.rollback()
        return
    entry = failure_entry(code, message, tenant_id=part.tenant_id)
    _keep_or_replace_failure(part, entry)
    if final_attempt:
        _finish_part(part, "failed")
        summary.increment(part.run_id, failed=1)
        _append_failures(part.run_id, [entry])
    else:
        part.status = "queued"  # the queue retries it; the watchdog leaves queued parts with a live job alone
    db.session.commit()


def recover_lost_part(part_id: int, *, max_attempts: int) -> str:
    """A running part whose heartbeat went quiet: if a live worker still holds its tenant lock,
    leave it ("alive"); else queue it again to resume from its last committed cursor
    ("requeued"), or fail it when it has had its attempts ("failed")."""
    part, run = _load(part_id)
    if part is None or part.status != "running":
        db.session.rollback()
        return "none"
    key = tenant_lock_key(run.type, run.workspace_id, part.tenant_id)
    with db.engine.connect() as probe:
        free = probe.scalar(text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": TENANT_LOCK, "key": key})
        try:
            if not free:
                db.session.rollback()
                return "alive"
            part = db.session.scalar(select(OperationRunPart).where(OperationRunPart.id == part_id)
                                     .with_for_update().execution_options(populate_existing=True))
            if part.status != "running":
                db.session.rollback()
                return "none"
            entry = failure_entry("worker.lost", tenant_id=part.tenant_id)
            _keep_or_replace_failure(part, entry)
            if part.attempts >= max_attempts:
                _finish_part(part, "failed")
                summary.increment(part.run_id, failed=1)
                _append_failures(part.run_id, [entry])
                state = "failed"
            else:
                part.status, part.queued_at = "queued", db.func.now()
                state = "requeued"
            db.session.commit()
        finally:
            if free:
                probe.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": TENANT_LOCK, "key": key})
            probe.commit()
    if state == "failed":
        maybe_complete(part.run_id)
    return state


# -- completing the run ------------------------------------------------------------------------------

def maybe_complete(run_id: int) -> bool:
    """Complete the run if none of its parts is left to do; True if this call completed it."""
    run = db.session.scalar(select(OperationRun).where(OperationRun.id == run_id).with_for_update()
                            .execution_options(populate_existing=True))
    if run is None or run.status != "running":
        db.session.rollback()
        return False
    tally = dict(db.session.execute(text("SELECT status, count(*) FROM operation_run_parts WHERE run_id = :id"
                                         " GROUP BY status"), {"id": run_id}).all())
    if tally.get("queued") or tally.get("running"):
        db.session.rollback()
        return False
    succeeded, failed, cancelled = tally.get("succeeded", 0), tally.get("failed", 0), tally.get("cancelled", 0)
    if cancelled:
        outcome = "cancelled"
    elif failed and succeeded:
        outcome = "partially_succeeded"
    elif failed:
        outcome = "failed"
    else:
        outcome = "succeeded"
    _complete(run, outcome=outcome)
    db.session.commit()
    return True


def cancel_unstarted(run_id: int) -> bool:
    """A cancelled run that no worker has picked up yet ends now, as cancelled."""
    run = db.session.scalar(select(OperationRun).where(OperationRun.id == run_id).with_for_update()
                            .execution_options(populate_existing=True))
    if run is None or run.status != "queued" or run.cancel_requested_at is None:
        db.session.rollback()
        return False
    _complete(run, outcome="cancelled")
    db.session.commit()
    return True


def _complete(run: OperationRun, *, outcome: str) -> None:
    """Mark the run completed, audit it and raise the failure alert, in the caller's transaction."""
    run.status, run.outcome = "completed", outcome
    run.completed_at = db.func.now()
    run.updated_at = db.func.now()
    db.session.flush()
    db.session.refresh(run)
    failed = outcome in ("failed", "partially_succeeded", "blocked")
    runbook_context = dict((run.context or {}).get("runbook") or {})
    audit.record(actor=ACTOR, action="platform.ops.runbooks.failed" if failed else "platform.ops.runbooks.completed",
                 ref_type="operation_run", ref_id=run.id, workspace_id=run.workspace_id, tenant_id=run.tenant_id,
                 context={"runbook": runbook_context, "operation_run_id": run.id, "outcome": outcome,
                          "summary_counts": run.summary_counts,
                          "affected_count": ((run.context or {}).get("preflight") or {}).get("affected_count"),
                          "platform_initiator": (run.context or {}).get("platform_initiator"),
                          "failures": [f.get("reason_code") for f in (run.failure_summary or [])][:10]})
    if failed:
        _alert_failure(run, runbook_context)


def _alert_failure(run: OperationRun, runbook_context: dict) -> None:
    from app.alerting.service import dispatch

    link = f"{current_app.config['PUBLIC_URL']}/system/runs/{run.id}"
    scope = runbook_context.get("scope") or ("single_tenant" if run.tenant_id else "all_tenants")
    reasons = sorted({f.get("reason_code") for f in (run.failure_summary or []) if f.get("reason_code")})
    dispatch(workspace_id=run.workspace_id, tenant_id=run.tenant_id, event_type="operations.run.failed",
             message=f"Run #{run.id} of {run.type} ({scope.replace('_', ' ')}) ended {run.outcome.replace('_', ' ')}"
                     + (f": {', '.join(reasons)}" if reasons else "."),
             link=None,  # the run page is in /system, which the workspace's own people cannot open
             metadata={"operation_run_id": run.id, "run_type": run.type, "scope": scope, "outcome": run.outcome,
                       "summary_counts": run.summary_counts, "reason_codes": reasons, "view_run_url": link})
