"""Reading incidents in bulk: the board, the API list, counts per status, the SLA breach report.

Every list is keyset-paged on its sort key plus id, one query per page (never one per row). The
counts per status come from `incident_status_counts` (kept by a trigger) when the filters allow,
and are otherwise counted live with a cap, so a board over a million incidents stays fast.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, func, select, text, tuple_

from app.actors import Actor
from app.errors import BadRequest, NotAllowed
from app.extensions import db
from app.incidents.models import Incident
from app.incidents.vocabulary import ACTIVE_STATUSES, STATUSES
from app.tenancy import scope_sql

PAGE_SIZE = 50
NUMBER_RE = re.compile(r"^(?:inc-?)?(\d{1,9})$", re.I)
WORD_RE = re.compile(r"[a-z0-9]+")

LIST_COLUMNS = (
    Incident.id, Incident.number, Incident.title, Incident.severity, Incident.priority, Incident.status,
    Incident.category, Incident.assigned_team, Incident.assignee, Incident.tenant_id, Incident.labels,
    Incident.created_at, Incident.updated_at, Incident.acknowledge_due_at, Incident.resolve_due_at,
    Incident.acknowledge_breached, Incident.resolve_breached, Incident.sla_paused_at, Incident.is_simulation,
    Incident.trigger_source,
)

# sort name → (columns in order, ascending?)
SORTS = {
    "newest": ((Incident.created_at, Incident.id), False),
    "oldest": ((Incident.created_at, Incident.id), True),
    "updated": ((Incident.updated_at, Incident.id), False),
    "due": ((Incident.resolve_due_at, Incident.id), True),
    "severity": ((Incident.severity, Incident.created_at, Incident.id), True),
}
SORT_LABELS = {"newest": "Newest first", "oldest": "Oldest first", "updated": "Recently updated",
               "due": "Resolve due soonest", "severity": "Most severe first"}


@dataclass(frozen=True)
class IncidentFilters:
    status: str | None = None
    severity: str | None = None
    priority: str | None = None
    team: str | None = None
    assignee: str | None = None
    tenant_id: int | None = None
    label: str | None = None
    breached: bool | None = None
    q: str | None = None
    active_only: bool = False

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def only_summary_dimensions(self) -> bool:
        """Whether the counts can come from incident_status_counts (no assignee, label or text filter)."""
        return not (self.assignee or self.label or self.q)


def _search(q: str | None) -> tuple[str | None, object]:
    """('number', 1042), ('words', "disk:* & full:*") or (None, None) for a search box's text."""
    if not q:
        return None, None
    number = NUMBER_RE.match(q.strip())
    if number:
        return "number", int(number.group(1))
    words = WORD_RE.findall(q.lower())[:8]
    return ("words", " & ".join(f"{w}:*" for w in words)) if words else (None, None)


# filter name → the condition, with a bind parameter of the same name
_EQUALS = {"severity": Incident.severity, "priority": Incident.priority, "team": Incident.assigned_team,
           "assignee": Incident.assignee, "tenant_id": Incident.tenant_id}


def _shape_and_params(actor: Actor, filters: IncidentFilters, *, with_status: bool = True) -> tuple[tuple, dict]:
    """What the query looks like (which filters, hashable) and the values it binds."""
    params: dict = {"workspace_id": actor.workspace_id}
    present = []
    if with_status and filters.status:
        present.append("status")
        params["status"] = filters.status
    for name in _EQUALS:
        value = getattr(filters, name)
        if value is not None and value != "":
            present.append(name)
            params[name] = value
    if filters.label:
        present.append("label")
        params["label"] = [filters.label]
    search_kind, search_value = _search(filters.q)
    if search_kind:
        params[search_kind] = search_value
    return (tuple(present), filters.active_only, filters.breached, search_kind), params


@functools.lru_cache(maxsize=512)
def _conditions_for(shape: tuple) -> tuple:
    present, active_only, breached, search_kind = shape
    conditions = [Incident.workspace_id == bindparam("workspace_id")]
    for name in present:
        if name == "status":
            conditions.append(Incident.status == bindparam("status"))
        elif name == "label":
            conditions.append(Incident.labels.contains(bindparam("label", type_=Incident.labels.type)))
        else:
            conditions.append(_EQUALS[name] == bindparam(name))
    if active_only:
        conditions.append(Incident.status.in_(ACTIVE_STATUSES))
    if breached is True:
        conditions.append(Incident.acknowledge_breached | Incident.resolve_breached)
    elif breached is False:
        conditions.append(~Incident.acknowledge_breached & ~Incident.resolve_breached)
    if search_kind == "number":
        conditions.append(Incident.number == bindparam("number"))
    elif search_kind == "words":
        conditions.append(Incident.search.op("@@")(func.to_tsquery("simple", bindparam("words"))))
    return tuple(conditions)


_SQL_COLUMNS = ", ".join(f"i.{c.key}" for c in LIST_COLUMNS)
_SQL_EQUALS = {"status": "i.status = :status", "severity": "i.severity = :severity",
               "priority": "i.priority = :priority", "team": "i.assigned_team = :team",
               "assignee": "i.assignee = :assignee", "tenant_id": "i.tenant_id = :tenant_id",
               "label": "i.labels @> CAST(:label AS text[])"}
_ACTIVE_SQL = "i.status IN (" + ", ".join(f"'{s}'" for s in ACTIVE_STATUSES) + ")"


@functools.lru_cache(maxsize=1024)
def _page_statement(shape: tuple, scope_kind: str, scope_predicate: str, sort: str, keyset: bool, limit: int):
    """The page query of one filter shape, scope and order, as SQL built once.

    Written as SQL rather than through the ORM because it is the hottest query of the console
    (the board, its live search and polling, the API list): the tenant scope comes from the same
    place as everywhere else (app.tenancy.scope_sql) and is part of the statement's key.
    """
    present, active_only, breached, search_kind = shape
    where = ["i.workspace_id = :workspace_id", scope_predicate] + [_SQL_EQUALS[name] for name in present]
    if active_only:
        where.append(_ACTIVE_SQL)
    if breached is True:
        where.append("(i.acknowledge_breached OR i.resolve_breached)")
    elif breached is False:
        where.append("NOT i.acknowledge_breached AND NOT i.resolve_breached")
    if search_kind == "number":
        where.append("i.number = :number")
    elif search_kind == "words":
        where.append("i.search @@ to_tsquery('simple', :words)")
    columns, ascending = SORTS[sort]
    keys = ", ".join(f"i.{c.key}" for c in columns)
    if keyset:
        where.append(f"({keys}) {'>' if ascending else '<'} ("
                     + ", ".join(f":after_{n}" for n in range(len(columns))) + ")")
    direction = "ASC" if ascending else "DESC"
    order = ", ".join(f"i.{c.key} {direction}" for c in columns)
    return text(f"SELECT {_SQL_COLUMNS} FROM incidents i WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit}")


def encode_cursor(values: list) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else str(v) for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list:
    columns, _ = SORTS[sort]
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise ValueError
        values = []
        for column, value in zip(columns, raw, strict=True):
            if column.key in ("created_at", "updated_at", "resolve_due_at"):
                values.append(datetime.fromisoformat(value))
            elif column.key == "id":
                import uuid

                values.append(uuid.UUID(value))
            else:
                values.append(str(value))
        return values
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("That page link is not valid any more; start from the first page.") from None


@dataclass
class IncidentPage:
    rows: list
    next_cursor: str | None


def list_page(*, actor: Actor, filters: IncidentFilters, sort: str = "newest", cursor: str | None = None,
              limit: int = PAGE_SIZE) -> IncidentPage:
    """One page of incidents (rows with LIST_COLUMNS), keyset-paged in the chosen order."""
    if not actor.can("incidents.view"):
        raise NotAllowed("Your role cannot see incidents.")
    if sort not in SORTS:
        sort = "newest"
    columns, _ = SORTS[sort]
    shape, params = _shape_and_params(actor, filters)
    scope_kind, scope_predicate, scope_params = scope_sql(db.session, "i")
    params.update(scope_params)
    if cursor:
        params.update({f"after_{i}": value for i, value in enumerate(decode_cursor(cursor, sort))})
    rows = db.session.execute(_page_statement(shape, scope_kind, scope_predicate, sort, bool(cursor), limit + 1),
                              params).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor([getattr(last, c.key) for c in columns])
    return IncidentPage(rows=page, next_cursor=next_cursor)


@dataclass
class StatusCount:
    status: str | None  # None: all matches together (filters the summary cannot break down)
    count: int
    capped: bool = False


def status_counts(*, actor: Actor, filters: IncidentFilters) -> list[StatusCount] | None:
    """How many incidents match the filters in each status (the status filter itself left out).

    Exact and cheap from the summary table for tenant, severity, priority, team and SLA filters.
    None for an assignee, label or text search: counting those would cost as much as the search
    itself on every keystroke, so the page says how many it found instead.
    """
    if filters.only_summary_dimensions:
        return _summary_counts(actor, filters)
    return None


_SUMMARY = text("""
SELECT status, sum(n)::bigint AS n FROM incident_status_counts
WHERE workspace_id = :ws
  AND (CAST(:tenants AS integer[]) IS NULL OR tenant_id = ANY(CAST(:tenants AS integer[])))
  AND (CAST(:severity AS text) IS NULL OR severity = CAST(:severity AS text))
  AND (CAST(:priority AS text) IS NULL OR priority = CAST(:priority AS text))
  AND (CAST(:team AS text) IS NULL OR team = CAST(:team AS text))
  AND (CAST(:breached AS boolean) IS NULL OR breached = CAST(:breached AS boolean))
GROUP BY status
""")


COUNTS_FRESH_SECONDS = 3.0
# counts per filter set, kept a few seconds in each process: a busy board (every analyst polling,
# every keystroke of a search) asks the same question many times a second
_recent_counts: dict[tuple, tuple[float, dict]] = {}


def _summary_counts(actor: Actor, filters: IncidentFilters) -> list[StatusCount]:
    tenants = actor.tenant_ids
    if filters.tenant_id is not None:
        tenants = (filters.tenant_id,) if tenants is None or filters.tenant_id in tenants else ()
    key = (actor.workspace_id, tenants, filters.severity, filters.priority, filters.team, filters.breached)
    cached = _recent_counts.get(key)
    if cached is not None and cached[0] > time.monotonic() - COUNTS_FRESH_SECONDS:
        counts = cached[1]
    else:
        counts = dict(db.session.execute(_SUMMARY, {
            "ws": actor.workspace_id, "tenants": list(tenants) if tenants is not None else None,
            "severity": filters.severity, "priority": filters.priority, "team": filters.team,
            "breached": filters.breached}).all())
        if len(_recent_counts) > 5000:
            _recent_counts.clear()
        _recent_counts[key] = (time.monotonic(), counts)
    shown = ACTIVE_STATUSES if filters.active_only else tuple(STATUSES)
    return [StatusCount(status, int(counts.get(status, 0))) for status in STATUSES if status in shown]


def breach_report(*, actor: Actor, filters: IncidentFilters, cursor: str | None = None,
                  since: datetime | None = None, until: datetime | None = None, limit: int = PAGE_SIZE) -> IncidentPage:
    """Incidents that breached an SLA (newest breach first), for the SLA breach report and its CSV."""
    if not actor.can("sla.report"):
        raise NotAllowed("Your role does not include the SLA report.")
    shape, params = _shape_and_params(actor, filters)
    query = select(*LIST_COLUMNS, Incident.breached_at, Incident.acknowledged_at, Incident.resolved_at) \
        .where(*_conditions_for(shape), Incident.breached_at.is_not(None)).params(**params)
    if since:
        query = query.where(Incident.breached_at >= since)
    if until:
        query = query.where(Incident.breached_at < until)
    if cursor:
        try:
            at, incident_id = cursor.split("_", 1)
            import uuid

            query = query.where(tuple_(Incident.breached_at, Incident.id) < (datetime.fromisoformat(at),
                                                                              uuid.UUID(incident_id)))
        except ValueError:
            raise BadRequest("That page link is not valid any more; start from the first page.") from None
    rows = db.session.execute(query.order_by(Incident.breached_at.desc(), Incident.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = f"{page[-1].breached_at.isoformat()}_{page[-1].id}" if len(rows) > limit else None
    return IncidentPage(rows=page, next_cursor=next_cursor)


@functools.lru_cache(maxsize=1)
def sort_choices() -> dict[str, str]:
    return dict(SORT_LABELS)
