"""The SLA engine: due times from the workspace policy, the vendor pause, and breach detection.

Breaches are found by one set-based UPDATE that flips each breach flag at most once; only the
transaction that flipped a flag sees the row come back, so the timeline event, the automatic
escalation, the alert and the audit event happen once per breach however many workers run the
scan at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text

from app.actors import Actor
from app.alerts import service as alerts
from app.audit import service as audit
from app.extensions import db
from app.incidents import timeline
from app.incidents.models import Incident, SlaPolicy
from app.incidents.vocabulary import DEFAULT_SLO, SEVERITIES

SLA_ACTOR_LABEL = "system:sla"


@dataclass(frozen=True)
class Target:
    acknowledge_minutes: int
    resolve_minutes: int
    default_priority: str


def policy_for(workspace_id: int) -> dict[str, Target]:
    """The workspace's targets per severity: its own rows, the spec's defaults for the rest."""
    rows = {p.severity: p for p in db.session.scalars(select(SlaPolicy).where(SlaPolicy.workspace_id == workspace_id))}
    policy = {}
    for severity in SEVERITIES:
        if severity in rows:
            row = rows[severity]
            policy[severity] = Target(row.acknowledge_minutes, row.resolve_minutes, row.default_priority)
        else:
            default = DEFAULT_SLO[severity]
            policy[severity] = Target(default["acknowledge_minutes"], default["resolve_minutes"], default["priority"])
    return policy


def set_due_times(incident: Incident, target: Target) -> None:
    """Due times from creation, pushed back by the time spent waiting on a vendor."""
    incident.acknowledge_due_at = incident.created_at + timedelta(minutes=target.acknowledge_minutes)
    incident.resolve_due_at = (incident.created_at + timedelta(minutes=target.resolve_minutes)
                               + timedelta(seconds=incident.sla_paused_seconds))


def recheck_breaches(incident: Incident, at: datetime) -> None:
    """After a severity change the due times move: a breach flag only stays if it is still true."""
    if incident.acknowledge_breached and (incident.acknowledged_at or at) <= incident.acknowledge_due_at:
        incident.acknowledge_breached = False
    if incident.resolve_breached and (incident.resolved_at or at) <= incident.resolve_due_at:
        incident.resolve_breached = False
    if not incident.breached:
        incident.breached_at = None


def pause(incident: Incident, at: datetime) -> None:
    if incident.sla_paused_at is None:
        incident.sla_paused_at = at


def resume(incident: Incident, at: datetime) -> None:
    """Leaving pending_vendor: the resolve clock gets back the time it was stopped."""
    if incident.sla_paused_at is not None:
        paused = max(0, int((at - incident.sla_paused_at).total_seconds()))
        incident.sla_paused_seconds += paused
        incident.resolve_due_at += timedelta(seconds=paused)
        incident.sla_paused_at = None


_FLIP_ACKNOWLEDGE = text("""
UPDATE incidents SET acknowledge_breached = true, breached_at = coalesce(breached_at, :now), updated_at = :now
WHERE status = 'open' AND NOT acknowledge_breached AND acknowledge_due_at < :now
RETURNING id
""")
_FLIP_RESOLVE = text("""
UPDATE incidents SET resolve_breached = true, breached_at = coalesce(breached_at, :now), updated_at = :now
WHERE status IN ('open', 'investigating', 'escalated', 'mitigated') AND sla_paused_at IS NULL
  AND NOT resolve_breached AND resolve_due_at < :now
RETURNING id
""")


@dataclass
class ScanResult:
    acknowledge_breaches: int = 0
    resolve_breaches: int = 0
    escalated: int = 0


def scan_breaches(*, now: datetime | None = None, batch: int = 500) -> ScanResult:
    """Flag new breaches, then act on each exactly once: timeline, escalation, alert, audit."""
    moment = now or timeline.now()
    result = ScanResult()
    for kind, statement in (("acknowledge", _FLIP_ACKNOWLEDGE), ("resolve", _FLIP_RESOLVE)):
        ids = [row.id for row in db.session.execute(statement, {"now": moment})]
        for start in range(0, len(ids), batch):
            incidents = db.session.scalars(select(Incident).where(Incident.id.in_(ids[start:start + batch]))).all()
            for incident in incidents:
                if _act_on_breach(incident, kind, moment):
                    result.escalated += 1
        if kind == "acknowledge":
            result.acknowledge_breaches = len(ids)
        else:
            result.resolve_breaches = len(ids)
        db.session.commit()
    return result


def _act_on_breach(incident: Incident, kind: str, at: datetime) -> bool:
    actor = Actor.system("sla", workspace_id=incident.workspace_id)
    due = incident.acknowledge_due_at if kind == "acknowledge" else incident.resolve_due_at
    what = "acknowledged" if kind == "acknowledge" else "resolved"
    timeline.add(incident, event_type="automated_alert", author=SLA_ACTOR_LABEL, at=at,
                 body=f"SLA breached: not {what} by {due:%Y-%m-%d %H:%M} UTC.",
                 data={"sla_breach": kind, "due_at": due.isoformat()})
    audit.record(actor=actor, action="update", ref_type="incident", ref_id=incident.id,
                 tenant_id=incident.tenant_id, field_deltas={f"{kind}_breached": [False, True]},
                 context={"reason": "sla_breach", "due_at": due}, occurred_at=at)
    escalated = False
    if incident.priority == "high" and incident.status in ("open", "investigating", "escalated"):
        # open stays open (only an acknowledgement leaves it) but now belongs to the incident manager
        before = {"status": incident.status, "assigned_team": incident.assigned_team}
        if incident.status == "investigating":
            incident.status = "escalated"
        incident.assigned_team = "incident_manager"
        changes = audit.deltas(before, {"status": incident.status, "assigned_team": incident.assigned_team})
        if changes:
            timeline.add(incident, event_type="escalation", author=SLA_ACTOR_LABEL, at=at,
                         body="Escalated automatically to the incident manager (high priority, SLA breached).",
                         data={"team": "incident_manager", "automatic": True})
            audit.record(actor=actor, action="escalate", ref_type="incident", ref_id=incident.id,
                         tenant_id=incident.tenant_id, field_deltas=changes, context={"reason": "sla_breach"},
                         occurred_at=at)
            escalated = True
    simulated = " [simulation]" if incident.is_simulation else ""
    alerts.raise_alert(workspace_id=incident.workspace_id, tenant_id=incident.tenant_id,
                       audience_role="incident_manager", kind="sla_breach",
                       dedupe_key=f"sla:{incident.id}:{kind}",
                       message=f"{incident.reference}{simulated} breached its {kind} SLA: {incident.title[:120]}",
                       link=f"/incidents/{incident.id}", data={"incident_id": str(incident.id), "sla": kind})
    return escalated


# due times and breach flags as the policy says they should be, for the incidents `{where}` selects
_DUE = """
WITH policy AS (
    SELECT s.severity,
           coalesce(p.acknowledge_minutes, s.acknowledge_minutes) AS acknowledge_minutes,
           coalesce(p.resolve_minutes, s.resolve_minutes) AS resolve_minutes
    FROM (VALUES ('p1', 5, 60), ('p2', 15, 240), ('p3', 60, 1440), ('p4', 240, 4320))
         AS s(severity, acknowledge_minutes, resolve_minutes)
    LEFT JOIN sla_policies p ON p.workspace_id = :workspace_id AND p.severity = s.severity
), due AS (
    -- history gets its flags from the recorded times; a live incident only loses a flag that is no
    -- longer true: raising one is the scanner's job, which also escalates and alerts
    SELECT i.id, d.ack_due, d.resolve_due,
           CASE WHEN i.acknowledged_at IS NOT NULL THEN i.acknowledged_at > d.ack_due
                ELSE i.acknowledge_breached AND now() > d.ack_due END AS ack_late,
           CASE WHEN i.resolved_at IS NOT NULL THEN i.resolved_at > d.resolve_due
                ELSE i.resolve_breached AND coalesce(i.sla_paused_at, now()) > d.resolve_due END AS resolve_late
    FROM incidents i
    JOIN policy ON policy.severity = i.severity
    CROSS JOIN LATERAL (SELECT
        i.created_at + make_interval(mins => policy.acknowledge_minutes) AS ack_due,
        i.created_at + make_interval(mins => policy.resolve_minutes) + make_interval(secs => i.sla_paused_seconds)
            AS resolve_due) d
    WHERE i.workspace_id = :workspace_id AND (CAST(:tenant_id AS integer) IS NULL OR i.tenant_id = :tenant_id)
      {where}
)"""
_STALE = """(i.acknowledge_due_at, i.resolve_due_at, i.acknowledge_breached, i.resolve_breached)
          IS DISTINCT FROM (due.ack_due, due.resolve_due, due.ack_late, due.resolve_late)"""

_RECOMPUTE = text(_DUE.format(where="AND i.id > CAST(:after AS uuid) ORDER BY i.id LIMIT :chunk") + f"""
, changed AS (
    UPDATE incidents i SET
        acknowledge_due_at = due.ack_due, resolve_due_at = due.resolve_due,
        acknowledge_breached = due.ack_late, resolve_breached = due.resolve_late,
        breached_at = CASE
            WHEN NOT (due.ack_late OR due.resolve_late) THEN NULL
            ELSE coalesce(i.breached_at, least(CASE WHEN due.ack_late THEN due.ack_due END,
                                               CASE WHEN due.resolve_late THEN due.resolve_due END)) END
    FROM due
    WHERE i.id = due.id AND {_STALE}
    RETURNING i.id
)
SELECT (SELECT count(*) FROM due) AS scanned, (SELECT count(*) FROM changed) AS changed,
       (SELECT max(id::text) FROM due) AS last_id
""")

_SURVEY = text(_DUE.format(where="") + f"""
SELECT count(*) AS total, count(*) FILTER (WHERE {_STALE}) AS stale
FROM due JOIN incidents i ON i.id = due.id
""")


def survey(*, workspace_id: int, tenant_id: int | None = None) -> tuple[int, int]:
    """(incidents, incidents a recompute would change), changing nothing."""
    row = db.session.execute(_SURVEY, {"workspace_id": workspace_id, "tenant_id": tenant_id}).one()
    return row.total, row.stale


def recompute_chunk(*, workspace_id: int, tenant_id: int | None, after: str = "00000000-0000-0000-0000-000000000000",
                    chunk: int = 5000) -> tuple[int, int, str | None]:
    """Recompute due times and breach flags of up to `chunk` incidents after id `after`, in SQL.

    Returns (scanned, changed, last id) — run again from the last id until scanned is 0. Safe to
    repeat: an incident already right is not touched.
    """
    row = db.session.execute(_RECOMPUTE, {"workspace_id": workspace_id, "tenant_id": tenant_id,
                                          "after": after, "chunk": chunk}).one()
    return row.scanned, row.changed, row.last_id


def recompute_workspace(*, workspace_id: int, tenant_id: int | None = None, chunk: int = 5000) -> tuple[int, int]:
    """Every incident of a workspace (or tenant), chunk by chunk, each chunk committed; (scanned, changed)."""
    scanned = changed = 0
    after = "00000000-0000-0000-0000-000000000000"
    while True:
        n, c, last = recompute_chunk(workspace_id=workspace_id, tenant_id=tenant_id, after=after, chunk=chunk)
        db.session.commit()
        scanned, changed = scanned + n, changed + c
        if n < chunk or last is None:
            return scanned, changed
        after = last
