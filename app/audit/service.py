"""Recording governed actions and reading them back.

`record` adds the event to the caller's transaction, so the change and its audit row commit or
roll back together (halt on audit failure). The database fills in the hash chain; `verify_chain`
recomputes it and names the first row that does not match.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.actors import Actor
from app.audit.models import AUDIT_ACTIONS, AuditEvent
from app.errors import NotAllowed
from app.extensions import db
from app.tenancy import scope_sql

PRIVILEGED_ACTIONS = frozenset({"break_glass", "approve", "reject"})
PRIVILEGED_REF_TYPES = frozenset({"membership", "platform_user", "service_account", "api_token"})
SECRET_MARKERS = ("password", "secret", "token", "authorization", "cookie", "api_key")
CONTEXT_VALUE_LIMIT = 500
PAGE_SIZE = 50


def is_privileged(action: str, ref_type: str) -> bool:
    """Role changes, break-glass, approvals and runbooks: what the privileged-changes view shows."""
    return (action in PRIVILEGED_ACTIONS or action.startswith("platform.ops.runbooks.")
            or ref_type in PRIVILEGED_REF_TYPES)


def minimal_context(context: dict[str, Any] | None) -> dict[str, Any]:
    """Keep audit context small and free of secrets: drop secret-looking keys, cut long values."""

    def clean(value: Any, depth: int = 0) -> Any:
        if isinstance(value, dict):
            if depth > 3:
                return "…"
            return {str(k): clean(v, depth + 1) for k, v in value.items()
                    if not any(marker in str(k).lower() for marker in SECRET_MARKERS)}
        if isinstance(value, (list, tuple)):
            return [clean(v, depth + 1) for v in list(value)[:50]]
        if isinstance(value, str) and len(value) > CONTEXT_VALUE_LIMIT:
            return value[:CONTEXT_VALUE_LIMIT] + "…"
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return str(value)  # ids (UUID), decimals, enums: their text

    return clean(context or {})


def record(*, actor: Actor, action: str, ref_type: str, ref_id: object | None = None,
           workspace_id: int | None = None, tenant_id: int | None = None,
           field_deltas: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
           occurred_at: datetime | None = None) -> AuditEvent:
    """Add one audit event to the current transaction (the caller commits)."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        workspace_id=workspace_id if workspace_id is not None else actor.workspace_id,
        tenant_id=tenant_id,
        action=action,
        ref_type=ref_type,
        ref_id=None if ref_id is None else str(ref_id),
        actor_type=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        field_deltas=minimal_context(field_deltas),
        context=minimal_context(context),
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:512] or None,
        is_privileged=is_privileged(action, ref_type),
        # the database stamps "now" itself; only a past time (retroactive records) is passed on
        occurred_at=occurred_at if occurred_at is not None and occurred_at < _now() else None,
    )
    db.session.add(event)
    return event


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC) - timedelta(seconds=1)


def deltas(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Field → [old, new] for the fields that changed."""
    return {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    ref_type: str | None = None
    ref_id: str | None = None
    tenant_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    privileged_only: bool = False

    def as_query_args(self) -> dict[str, str]:
        args = {
            "actor": self.actor, "action": self.action, "ref_type": self.ref_type, "ref_id": self.ref_id,
            "tenant": self.tenant_id, "since": self.since.strftime("%Y-%m-%dT%H:%M") if self.since else None,
            "until": self.until.strftime("%Y-%m-%dT%H:%M") if self.until else None,
        }
        return {k: str(v) for k, v in args.items() if v not in (None, "")}


@dataclass
class AuditPage:
    events: list  # rows with the LIST_COLUMNS
    older_cursor: int | None = None  # pass as before= for the next (older) page
    newer_cursor: int | None = None  # pass as after= for the previous (newer) page
    filters: AuditFilters = field(default_factory=AuditFilters)


# what the list views show; rows, not ORM objects, since nothing on a list page changes them
LIST_COLUMNS = (AuditEvent.id, AuditEvent.occurred_at, AuditEvent.action, AuditEvent.ref_type, AuditEvent.ref_id,
                AuditEvent.actor_type, AuditEvent.actor_label, AuditEvent.workspace_id, AuditEvent.tenant_id,
                AuditEvent.field_deltas, AuditEvent.context, AuditEvent.ip, AuditEvent.is_privileged)
EXPORT_COLUMNS = LIST_COLUMNS + (AuditEvent.user_agent, AuditEvent.chain_seq, AuditEvent.row_hash)


_EQUALITY_FILTERS = {"actor": "actor_label", "action": "action", "ref_type": "ref_type", "ref_id": "ref_id",
                     "tenant_id": "tenant_id"}
_LIST_SQL = ", ".join(column.key for column in LIST_COLUMNS)
_EXPORT_SQL = ", ".join(column.key for column in EXPORT_COLUMNS)


@functools.lru_cache(maxsize=1024)
def _statement(export: bool, chain: str, scope_predicate: str, equal: tuple[str, ...], since: bool, until: bool,
               privileged: bool, cursor: str | None, limit: int):
    """The list query for one shape of filters and scope, as SQL built once with bind parameters.

    Written as SQL rather than through the ORM because list pages run on every keystroke of an
    active search and building and compiling an ORM statement was a good part of a request's cost.
    The tenant scope comes from the same place as everywhere else (app.tenancy.scope_sql) and is
    part of the statement's key.
    """
    where = [scope_predicate]
    if chain == "workspace":
        where.append("workspace_id = :workspace_id")
    elif chain == "platform":
        where.append("workspace_id IS NULL")
    where += [f"{_EQUALITY_FILTERS[name]} = :{name}" for name in equal]
    if since:
        where.append("occurred_at >= :since")
    if until:
        where.append("occurred_at < :until")
    if privileged:
        where.append("is_privileged")
    order = "id DESC"
    if cursor == "before":
        where.append("id < :cursor")
    elif cursor == "after":
        where.append("id > :cursor")
        order = "id ASC"
    columns = _EXPORT_SQL if export else _LIST_SQL
    return text(f"SELECT {columns} FROM audit_events WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit}")


def _run(actor: Actor, filters: AuditFilters, *, platform_view: bool, workspace: str | None, export: bool,
         cursor: str | None, cursor_value: int | None, limit: int):
    """Execute the filtered list query. `workspace` (platform view): an id, "platform" or None for all."""
    if not (actor.can("system.audit.view") if platform_view else actor.can("audit.view")):
        raise NotAllowed("Your role does not include the audit views.")
    params: dict = {}
    if not platform_view:
        chain, params["workspace_id"] = "workspace", actor.workspace_id
    elif workspace == "platform":
        chain = "platform"
    elif workspace:
        chain, params["workspace_id"] = "workspace", int(workspace)
    else:
        chain = "all"
    equal = tuple(name for name in _EQUALITY_FILTERS if getattr(filters, name) is not None)
    params.update({name: getattr(filters, name) for name in equal})
    if filters.since:
        params["since"] = filters.since
    if filters.until:
        params["until"] = filters.until
    if cursor:
        params["cursor"] = cursor_value
    _, scope_predicate, scope_params = scope_sql(db.session, "audit_events")
    params.update(scope_params)
    statement = _statement(export, chain, scope_predicate, equal, filters.since is not None,
                           filters.until is not None, filters.privileged_only, cursor, limit)
    return db.session.execute(statement, params).all()


def list_events(*, actor: Actor, filters: AuditFilters, before: int | None = None, after: int | None = None,
                limit: int = PAGE_SIZE, platform_view: bool = False, workspace: str | None = None) -> AuditPage:
    """One page of events, newest first, by keyset on id (`before` = older page, `after` = newer)."""
    common = dict(platform_view=platform_view, workspace=workspace, export=False, limit=limit + 1)
    if after is not None:
        rows = _run(actor, filters, cursor="after", cursor_value=after, **common)
        has_newer = len(rows) > limit
        events = list(reversed(rows[:limit]))
        return AuditPage(events=events, filters=filters,
                         newer_cursor=events[0].id if has_newer and events else None,
                         older_cursor=events[-1].id if events else None)
    rows = _run(actor, filters, cursor="before" if before is not None else None, cursor_value=before, **common)
    events = list(rows[:limit])
    return AuditPage(events=events, filters=filters,
                     older_cursor=events[-1].id if len(rows) > limit else None,
                     newer_cursor=events[0].id if before is not None and events else None)


def iter_events(*, actor: Actor, filters: AuditFilters, platform_view: bool = False, workspace: str | None = None,
                batch: int = 2000) -> Iterator:
    """Every matching event, newest first, fetched in keyset batches (for CSV export)."""
    cursor = None
    while True:
        rows = _run(actor, filters, platform_view=platform_view, workspace=workspace, export=True,
                    cursor="before" if cursor is not None else None, cursor_value=cursor, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        cursor = rows[-1].id


@dataclass(frozen=True)
class ChainBreak:
    workspace_id: int | None
    event_id: int
    chain_seq: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    events_checked: int
    chains_checked: int
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


_VERIFY_SQL = """
WITH chain AS (
    SELECT e.id, e.workspace_id, e.chain_seq, e.prev_hash, e.row_hash,
           audit_event_digest(e) AS recomputed,
           lag(e.row_hash) OVER w AS previous_hash,
           lag(e.chain_seq) OVER w AS previous_seq
    FROM audit_events e
    {where}
    WINDOW w AS (PARTITION BY coalesce(e.workspace_id, 0) ORDER BY e.chain_seq)
), checked AS (
    SELECT count(*) AS events, count(DISTINCT coalesce(workspace_id, 0)) AS chains FROM chain
), broken AS (
    SELECT DISTINCT ON (coalesce(workspace_id, 0)) workspace_id, id, chain_seq,
           CASE WHEN chain_seq <> coalesce(previous_seq, 0) + 1 THEN 'events missing before this one'
                WHEN prev_hash <> coalesce(previous_hash, repeat('0', 64)) THEN 'link to the previous event broken'
                ELSE 'event altered after it was written' END AS reason
    FROM chain
    WHERE recomputed <> row_hash
       OR prev_hash <> coalesce(previous_hash, repeat('0', 64))
       OR chain_seq <> coalesce(previous_seq, 0) + 1
    ORDER BY coalesce(workspace_id, 0), chain_seq
)
SELECT c.events, c.chains, b.workspace_id, b.id, b.chain_seq, b.reason
FROM checked c LEFT JOIN broken b ON true
ORDER BY b.workspace_id NULLS FIRST, b.chain_seq
"""


def verify_chain(*, workspace_id: int | None = None, platform_chain: bool = False) -> ChainReport:
    """Recompute every hash of one chain (or all chains) and report the first break of each."""
    if workspace_id is not None:
        where, params = "WHERE coalesce(e.workspace_id, 0) = :key", {"key": workspace_id}
    elif platform_chain:
        where, params = "WHERE e.workspace_id IS NULL", {}
    else:
        where, params = "", {}
    rows = db.session.execute(text(_VERIFY_SQL.format(where=where)), params).all()
    events = rows[0].events if rows else 0
    chains = rows[0].chains if rows else 0
    breaks = [ChainBreak(workspace_id=r.workspace_id, event_id=r.id, chain_seq=r.chain_seq, reason=r.reason)
              for r in rows if r.id is not None]
    return ChainReport(events_checked=events, chains_checked=chains, breaks=breaks)
