"""Incidents: identify (create), read, and run an SOP action, each in one transaction."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select, text

from app.actors import Actor
from app.audit import service as audit
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.extensions import db, get_redis, redis_key
from app.incidents import sla, timeline
from app.incidents.actions import ACTIONS, Context, check_state
from app.incidents.fields import Field, a_uuid, clean, labels, one_of
from app.incidents.fields import text as text_field
from app.incidents.models import Incident
from app.incidents.vocabulary import CATEGORIES, DETECTION_SOURCES, SEVERITIES, TRIGGER_SOURCES
from app.workspaces.service import next_reference_number, tenant_for

CREATE_FIELDS = (
    Field("title", True, text_field(max_length=500)),
    Field("severity", True, one_of(SEVERITIES)),
    Field("tenant", True),
    Field("description", False, text_field(min_length=0, max_length=50_000)),
    Field("category", False, one_of(CATEGORIES)),
    Field("subcategory", False, text_field(max_length=100)),
    Field("affected_service", False, text_field(max_length=200)),
    Field("labels", False, labels),
    Field("detection_source", False, one_of(DETECTION_SOURCES)),
    Field("model_id", False, a_uuid),
)


def create_incident(*, actor: Actor, data: Mapping[str, Any], trigger_source: str = "manual",
                    is_simulation: bool = False, simulation: dict | None = None, at: datetime | None = None,
                    strict: bool = True) -> Incident:
    """SOP 2: a new incident, status open, numbered, with SLA due times from the workspace policy."""
    values = clean(CREATE_FIELDS, data, strict=strict)
    if not actor.can("incidents.create"):
        raise NotAllowed("Your role cannot report incidents.")
    if trigger_source not in TRIGGER_SOURCES:
        raise ValidationFailed("Unknown trigger source.", fields={"trigger_source": "unknown"})
    problems: dict[str, str] = {}
    tenant = tenant_for(actor=actor, tenant=values["tenant"], problems=problems)
    if problems:
        raise ValidationFailed("Some fields are missing or not valid.", fields=problems)
    moment = at or timeline.now()
    policy = sla.policy_for(actor.workspace_id)
    target = policy[values["severity"]]
    incident = Incident(
        id=uuid.uuid4(), workspace_id=actor.workspace_id, tenant_id=tenant.id,
        number=next_reference_number(workspace_id=actor.workspace_id, kind="incident"),
        title=values["title"], description=values["description"] or "", severity=values["severity"],
        priority=target.default_priority, status="open", category=values["category"],
        subcategory=values["subcategory"], affected_service=values["affected_service"],
        labels=values["labels"] or [], model_id=values["model_id"],
        detection_source=values["detection_source"] or ("user_report" if trigger_source == "manual"
                                                        else "automated_alert"),
        trigger_source=trigger_source, reporter_id=actor.id if actor.kind == "user" else None,
        reporter=actor.subject, created_by=actor.subject, is_simulation=is_simulation, simulation=simulation,
        created_at=moment, updated_at=moment, sla_paused_seconds=0)
    sla.set_due_times(incident, target)
    db.session.add(incident)
    db.session.flush()
    timeline.add(incident, event_type="status_change", author=actor.subject, at=moment,
                 body=f"Reported by {actor.subject}" + (" (simulation)" if is_simulation else "") + ".",
                 data={"to": "open"})
    audit.record(actor=actor, action="simulation" if is_simulation else "identify", ref_type="incident",
                 ref_id=incident.id, tenant_id=tenant.id,
                 field_deltas={"title": [None, incident.title], "severity": [None, incident.severity],
                               "status": [None, "open"]},
                 context={"number": incident.reference, "trigger_source": trigger_source}, occurred_at=moment)
    if not is_simulation:
        db.session.execute(text("""
            INSERT INTO incident_totals (workspace_id, severity, trigger_source, total) VALUES (:ws, :sev, :src, 1)
            ON CONFLICT (workspace_id, severity, trigger_source) DO UPDATE SET total = incident_totals.total + 1
        """), {"ws": incident.workspace_id, "sev": incident.severity, "src": trigger_source})
    db.session.commit()
    return incident


SIMULATION_FIELDS = CREATE_FIELDS + (Field("scenario", True, text_field(max_length=2000)),
                                     Field("scope", True, text_field(max_length=500)))


def start_simulation(*, actor: Actor, data: Mapping[str, Any]) -> Incident:
    """SOP 18: an incident manager's drill — a flagged incident kept out of KPIs."""
    values = clean(SIMULATION_FIELDS, data, strict=False)
    if not actor.can("incidents.simulate"):
        raise NotAllowed("Only incident managers run simulations.")
    payload = {k: v for k, v in data.items() if k not in ("scenario", "scope")}
    return create_incident(actor=actor, data=payload, is_simulation=True, strict=False,
                           simulation={"scenario": values["scenario"], "scope": values["scope"]})


def get_incident(*, actor: Actor, incident_id, for_update: bool = False) -> Incident:
    """One incident in the actor's scope; another tenant's answers exactly like a missing one."""
    try:
        wanted = uuid.UUID(str(incident_id))
    except ValueError:
        raise NotFound("No such incident.") from None
    query = select(Incident).where(Incident.id == wanted)
    if actor.workspace_id is not None:
        query = query.where(Incident.workspace_id == actor.workspace_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    incident = db.session.scalar(query)
    if incident is None or not actor.may_see_tenant(incident.tenant_id):
        raise NotFound("No such incident.")
    return incident


def get_by_number(*, actor: Actor, number: int) -> Incident:
    incident = db.session.scalar(select(Incident).where(Incident.workspace_id == actor.workspace_id,
                                                        Incident.number == number))
    if incident is None or not actor.may_see_tenant(incident.tenant_id):
        raise NotFound("No such incident.")
    return incident


def perform(*, actor: Actor, incident_id, action: str, data: Mapping[str, Any], at: datetime | None = None,
            strict: bool = True) -> Incident:
    """Run one SOP: fields, role, state (and duties), change, timeline, audit — one transaction."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise NotFound(f"There is no incident action {action!r}.")
    incident = get_incident(actor=actor, incident_id=incident_id, for_update=True)
    values = clean(spec.fields, data, strict=strict)
    if not actor.can(spec.capability):
        raise NotAllowed(f"Your role cannot {spec.label} incidents.")
    check_state(spec, incident)
    moment = at or timeline.now()
    spec.apply(Context(incident=incident, actor=actor, values=values, at=moment))
    incident.updated_at = moment
    db.session.commit()
    return incident


DISCOVERY_WINDOW = 300
# a per-process memory of what was audited lately, in front of the shared one in Redis
_recently_audited: dict[tuple, float] = {}


def audit_discovery(*, actor: Actor, filters: Mapping[str, Any]) -> None:
    """SOP 1: searching incidents is audited (entity type and filters only), at most once every five
    minutes per person and filter set so a live board does not flood the trail."""
    shown = {k: v for k, v in filters.items() if v not in (None, "", [], ())}
    if not shown:
        return
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()[:24]
    key = (actor.kind, actor.id, digest)
    if _recently_audited.get(key, 0) > time.monotonic() - DISCOVERY_WINDOW:
        return  # this process already knows; spare the Redis round trip on every keystroke and poll
    _recently_audited[key] = time.monotonic()
    if len(_recently_audited) > 10_000:
        _recently_audited.clear()
    try:
        first = get_redis().set(redis_key("discovery", actor.kind, actor.id, digest), "1", nx=True,
                                ex=DISCOVERY_WINDOW)
    except redis.RedisError:
        first = True
    if first:
        audit.record(actor=actor, action="identify", ref_type="incident",
                     context={"entity_type": "incident", "filters": shown})
        db.session.commit()
