"""The runbook catalog (code, not a table): what each runbook is, who may run it on which scopes,
and how its work is counted, split into parts and done chunk by chunk.

A runbook's work is set-based and chunked: `chunk(...)` does one transaction's worth (thousands
of rows in a statement or two) from a cursor and says where the next one starts. Chunks must be
safe to repeat: the runner commits each chunk together with its cursor and counts, so a chunk is
either wholly applied and counted or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.findings import lifecycle
from app.incidents import sla
from app.runbooks.sanitize import failure_entry

SINGLE_TENANT, ALL_TENANTS = "single_tenant", "all_tenants"
SCOPE_LABELS = {SINGLE_TENANT: "One tenant", ALL_TENANTS: "All tenants"}


@dataclass(frozen=True)
class Counts:
    affected: int  # rows the run would change
    total: int  # rows it would scan


@dataclass(frozen=True)
class Chunk:
    processed: int
    updated: int
    cursor: str | None  # where the next chunk starts
    done: bool
    problems: list[dict] = field(default_factory=list)  # sanitized failure entries

    @property
    def skipped(self) -> int:
        return self.processed - self.updated


class Work(Protocol):
    def preflight(self, workspace_id: int, tenant_id: int | None) -> Counts: ...

    def parts(self, workspace_id: int, tenant_id: int | None) -> list[int | None]:
        """The units the run fans out to: tenant ids, or None for the workspace as a whole."""

    def part_totals(self, workspace_id: int, tenant_id: int | None) -> dict[int | None, int]:
        """Rows per part, counted once when the run fans out (so progress has its whole total at once)."""

    def chunk(self, workspace_id: int, tenant_id: int | None, cursor: str | None) -> Chunk: ...


@dataclass(frozen=True)
class Runbook:
    key: str
    label: str
    description: str
    capability: str
    estimated_duration: str
    scopes: tuple[str, ...]
    unit: str  # what the counts count
    work: Work
    read_only: bool = False
    run_after_deploy: bool = False


def _chunk_rows() -> int:
    return current_app.config["RUNBOOK_CHUNK_ROWS"]


def _tenants(workspace_id: int, tenant_id: int | None) -> list[int | None]:
    if tenant_id is not None:
        return [tenant_id]
    return list(db.session.scalars(text("SELECT id FROM tenants WHERE workspace_id = :w ORDER BY id"),
                                   {"w": workspace_id}))


def _counts_per_tenant(table: str, workspace_id: int, tenant_id: int | None) -> dict[int | None, int]:
    rows = db.session.execute(text(f"""
        SELECT t.id, (SELECT count(*) FROM {table} x WHERE x.workspace_id = :w AND x.tenant_id = t.id)
        FROM tenants t WHERE t.workspace_id = :w AND (CAST(:t AS integer) IS NULL OR t.id = :t) ORDER BY t.id
    """), {"w": workspace_id, "t": tenant_id}).all()  # noqa: S608 (table names are fixed)
    return {tenant: count for tenant, count in rows}


class FindingsBackfill:
    def preflight(self, workspace_id, tenant_id):
        found = lifecycle.survey(workspace_id=workspace_id, tenant_id=tenant_id)
        return Counts(affected=found.affected, total=found.total)

    parts = staticmethod(_tenants)

    def part_totals(self, workspace_id, tenant_id):
        return _counts_per_tenant("findings", workspace_id, tenant_id)

    def chunk(self, workspace_id, tenant_id, cursor):
        result = lifecycle.repair_chunk(workspace_id=workspace_id, tenant_id=tenant_id, after=cursor or "",
                                        chunk=_chunk_rows())
        return Chunk(processed=result.scanned, updated=result.changed, cursor=result.last_fingerprint or cursor,
                     done=result.last_fingerprint is None)


class SlaRecompute:
    START = "00000000-0000-0000-0000-000000000000"

    def preflight(self, workspace_id, tenant_id):
        total, stale = sla.survey(workspace_id=workspace_id, tenant_id=tenant_id)
        return Counts(affected=stale, total=total)

    parts = staticmethod(_tenants)

    def part_totals(self, workspace_id, tenant_id):
        return _counts_per_tenant("incidents", workspace_id, tenant_id)

    def chunk(self, workspace_id, tenant_id, cursor):
        rows = _chunk_rows()
        scanned, changed, last_id = sla.recompute_chunk(workspace_id=workspace_id, tenant_id=tenant_id,
                                                        after=cursor or self.START, chunk=rows)
        return Chunk(processed=scanned, updated=changed, cursor=last_id or cursor, done=scanned < rows)


_VERIFY_CHUNK = text("""
WITH chunk AS (
    SELECT e.id, e.chain_seq, e.prev_hash, e.row_hash, audit_event_digest(e) AS recomputed
    FROM audit_events e
    WHERE coalesce(e.workspace_id, 0) = :workspace_id AND e.chain_seq > :after
    ORDER BY e.chain_seq LIMIT :chunk
), checked AS (
    SELECT c.id, c.chain_seq,
           CASE WHEN c.chain_seq > 1 AND p.chain_seq IS NULL THEN 'events missing before this one'
                WHEN c.prev_hash <> coalesce(p.row_hash, repeat('0', 64)) THEN 'link to the previous event broken'
                WHEN c.recomputed <> c.row_hash THEN 'event altered after it was written' END AS reason
    FROM chunk c
    LEFT JOIN audit_events p ON coalesce(p.workspace_id, 0) = :workspace_id AND p.chain_seq = c.chain_seq - 1
)
SELECT count(*) AS checked, max(chain_seq) AS last_seq,
       (array_agg('event ' || id || ' (#' || chain_seq || '): ' || reason ORDER BY chain_seq)
            FILTER (WHERE reason IS NOT NULL))[1:10] AS breaks
FROM checked
""")


class AuditChainVerify:
    """Read-only: recompute every hash of the workspace's audit chain, in chain order."""

    def preflight(self, workspace_id, tenant_id):
        return Counts(affected=0, total=self.part_totals(workspace_id, None)[None])

    def parts(self, workspace_id, tenant_id):
        return [None]  # the chain belongs to the workspace, not to a tenant

    def part_totals(self, workspace_id, tenant_id):
        return {None: db.session.scalar(text("SELECT count(*) FROM audit_events WHERE coalesce(workspace_id, 0) = :w"),
                                        {"w": workspace_id})}

    def chunk(self, workspace_id, tenant_id, cursor):
        rows = _chunk_rows()
        row = db.session.execute(_VERIFY_CHUNK, {"workspace_id": workspace_id, "after": int(cursor or 0),
                                                 "chunk": rows}).one()
        problems = [failure_entry("audit.chain_broken", message) for message in row.breaks or []]
        return Chunk(processed=row.checked, updated=0, cursor=str(row.last_seq or cursor or 0),
                     done=row.checked < rows, problems=problems)


RUNBOOKS: dict[str, Runbook] = {runbook.key: runbook for runbook in (
    Runbook(
        key="findings.lifecycle.backfill", label="Backfill findings lifecycle",
        description="Recompute every finding's first/last seen, times seen, status and resolution from its "
                    "monitoring events, and consolidate duplicate findings of the same tenant and fingerprint "
                    "into the oldest one.",
        capability="system.runbooks.run", estimated_duration="about 10 s per 100,000 findings",
        scopes=(SINGLE_TENANT, ALL_TENANTS), unit="findings", work=FindingsBackfill(), run_after_deploy=True),
    Runbook(
        key="incidents.sla.recompute", label="Recompute SLA due times",
        description="Recompute every incident's acknowledge and resolve due times and breach flags from the "
                    "workspace's SLA policy, after a policy change. Raising a live breach stays the SLA "
                    "scanner's job, which escalates and alerts.",
        capability="system.runbooks.run", estimated_duration="about 5 s per 100,000 incidents",
        scopes=(SINGLE_TENANT, ALL_TENANTS), unit="incidents", work=SlaRecompute(), run_after_deploy=True),
    Runbook(
        key="audit.chain.verify", label="Verify the audit hash chain",
        description="Recompute every hash of the workspace's audit chain and report any event that was altered, "
                    "removed or relinked. Read-only.",
        capability="system.runbooks.run", estimated_duration="about 5 s per 100,000 audit events",
        scopes=(ALL_TENANTS,), unit="audit events", work=AuditChainVerify(), read_only=True),
)}
