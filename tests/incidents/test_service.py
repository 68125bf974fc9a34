"""The incident SOPs (spec §4) at the service level, without HTTP.

For every action of `ACTIONS`, plus identify (create) and the simulation drill:
(a) allowed: the change happens, exactly the SOP table's audit event(s) are written and the timeline
    gets its entry;
(b) refused by role -> NotAllowed, (c) refused by state -> InvalidTransition, (d) bad fields ->
    ValidationFailed naming them; and a refusal changes nothing (row, audit trail, timeline, ...).
Then segregation of duties, retroactive notes, the SLA engine and tenant scope.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.actors import Actor
from app.alerts.models import Alert
from app.audit.models import AuditEvent
from app.changes import service as changes
from app.changes.models import ChangeRequest, IncidentChangeLink
from app.communications.models import Communication
from app.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from app.extensions import db
from app.incidents import service, sla, timeline
from app.incidents.actions import ACTIONS
from app.incidents.models import (
    Incident,
    IncidentTotal,
    SlaPolicy,
    TimelineEntry,
    ToolUsage,
    VendorEngagement,
)
from app.reviews import service as reviews

# spec §2/§4: who works incidents day to day, and who clearly may not (auditor is read-only,
# end users report); workspace admins and change managers do not work incidents either
WORKERS = ("service_desk_analyst", "resolver", "service_desk_manager", "incident_manager")
NOT_WORKERS = ("auditor", "end_user", "workspace_admin", "change_manager")
READ_ONLY = ("auditor", "end_user", "workspace_admin")

# spec §4 severity table: acknowledge within, resolve within (minutes), default priority
SPEC_SLO = {"p1": (5, 60, "high"), "p2": (15, 240, "high"), "p3": (60, 1440, "medium"), "p4": (240, 4320, "low")}


# -- helpers -----------------------------------------------------------------------------------------

def past(**delta: float) -> datetime:
    """A moment in the past (actions may be back-dated, never dated in the future)."""
    return (datetime.now(UTC) - timedelta(**delta)).replace(microsecond=0)


def new_incident(world, *, severity: str = "p3", role: str = "service_desk_analyst", tenant=None,
                 at: datetime | None = None, **data: Any) -> Incident:
    payload = {"title": "Checkout is slow", "severity": severity, "tenant": (tenant or world.tenant_a).slug, **data}
    return service.create_incident(actor=world.actor(role), data=payload, at=at)


ACK = ("acknowledge", {})
RESOLVE = ("resolve", {"summary": "Raised the pool size."})
PATHS: dict[str, list[tuple[str, dict]]] = {
    "open": [],
    "investigating": [ACK],
    "escalated": [ACK, ("escalate", {"team": "L3", "reason": "Needs a database expert."})],
    "pending_vendor": [ACK, ("engage_vendor", {"vendor": "Acme DB", "contact_method": "email"})],
    "mitigated": [ACK, ("mitigate", {"summary": "Failed over to the replica."})],
    "resolved": [ACK, RESOLVE],
    "closed": [ACK, RESOLVE, ("close", {"notes": "Confirmed with the reporter."})],
}


def drive(world, incident: Incident, status: str, *, role: str = "resolver") -> Incident:
    """Walk an incident to `status` along the ordinary path."""
    for action, data in PATHS[status]:
        incident = service.perform(actor=world.actor(role), incident_id=incident.id, action=action, data=data)
    assert incident.status == status
    return incident


def incident_in(world, status: str, **kwargs: Any) -> Incident:
    return drive(world, new_incident(world, **kwargs), status)


def approved_change(world, tenant=None) -> ChangeRequest:
    change = changes.create_change(actor=world.actor("resolver"), tenant=(tenant or world.tenant_a).slug,
                                   summary="Roll back the pool configuration", risk="low")
    return changes.decide(actor=world.actor("change_manager"), change_id=change.id, approve=True)


def signed_off_review(world, incident: Incident, manager: str = "service_desk_manager") -> None:
    reviews.save_review(actor=world.actor(manager), incident_id=incident.id,
                        summary="The pool ran dry under the sale traffic; raised and alerted.")
    reviews.sign_off(actor=world.actor(manager), incident_id=incident.id)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def snapshot(world, incident_id=None) -> dict:
    """Everything a refused action must leave alone, read from the database."""
    db.session.expire_all()
    ws = world.workspace.id
    state = {
        "audit_events": _count(AuditEvent, AuditEvent.workspace_id == ws),
        "incident_timeline": _count(TimelineEntry, TimelineEntry.workspace_id == ws),
        "incidents": _count(Incident, Incident.workspace_id == ws),
        "communications": _count(Communication, Communication.workspace_id == ws),
        "vendor_engagements": _count(VendorEngagement, VendorEngagement.workspace_id == ws),
        "tool_usages": _count(ToolUsage, ToolUsage.workspace_id == ws),
        "change_links": _count(IncidentChangeLink, IncidentChangeLink.workspace_id == ws),
        "alerts": _count(Alert, Alert.workspace_id == ws),
    }
    if incident_id is not None:
        table = Incident.__table__
        state["row"] = dict(db.session.execute(select(table).where(table.c.id == incident_id)).mappings().one())
    return state


def assert_refused(world, error: type[Exception], call: Callable[[], Any], incident_id=None) -> Exception:
    """`call` raises `error`, leaves nothing pending in the session, and (after the rollback every
    caller does) nothing has changed in the database."""
    db.session.rollback()
    before = snapshot(world, incident_id)
    with pytest.raises(error) as caught:
        call()
    assert not db.session.new, f"refused, yet new rows are pending: {db.session.new}"
    assert not [o for o in db.session.dirty if db.session.is_modified(o)], "refused, yet rows were modified"
    db.session.rollback()
    assert snapshot(world, incident_id) == before
    return caught.value


@dataclass
class Written:
    incident: Incident
    audit: list[AuditEvent]
    timeline: list[TimelineEntry]

    @property
    def audit_actions(self) -> list[str]:
        return sorted(e.action for e in self.audit)

    @property
    def timeline_types(self) -> list[str]:
        return sorted(e.event_type for e in self.timeline)


def act(world, incident: Incident, action: str, data: dict, *, role: str = "resolver",
        at: datetime | None = None) -> Written:
    """Run one action and collect what it wrote to the audit trail and the timeline."""
    ws = world.workspace.id
    last_audit = db.session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))
                                   .where(AuditEvent.workspace_id == ws))
    last_seq = db.session.scalar(select(func.coalesce(func.max(TimelineEntry.seq), 0))
                                 .where(TimelineEntry.incident_id == incident.id))
    updated = service.perform(actor=world.actor(role), incident_id=incident.id, action=action, data=data, at=at)
    audit = list(db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == ws, AuditEvent.id > last_audit)
                                    .order_by(AuditEvent.id)))
    entries = list(db.session.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id,
                                                                  TimelineEntry.seq > last_seq)
                                      .order_by(TimelineEntry.seq)))
    for event in audit:  # every event written refers to this incident, in its tenant
        assert (event.ref_type, event.ref_id, event.tenant_id) == ("incident", str(incident.id), incident.tenant_id)
        assert event.actor_id == world.users[role].id
    return Written(updated, audit, entries)


# -- the action table: one allowed run, the refusals --------------------------------------------------

APPROVED = object()  # stands for the id of an approved change of the incident's tenant


@dataclass(frozen=True)
class Case:
    start: str  # a state the action runs from
    good: dict
    wrong_state: str | None  # a state the spec forbids it from (None: allowed from every state)
    bad: dict
    bad_fields: frozenset[str]
    refused_roles: tuple[str, ...] = NOT_WORKERS


CASES: dict[str, Case] = {
    "acknowledge": Case("open", {"team": "L2", "assignee": "alice"}, "investigating",
                        {"team": "martians", "colour": "blue"}, frozenset({"team", "colour"})),
    "assign": Case("investigating", {"team": "L3", "assignee": "bob"}, "resolved",
                   {"assignee": "bob"}, frozenset({"team"})),
    "categorize": Case("investigating", {"category": "software", "subcategory": "database"}, "closed",
                       {"category": "weather"}, frozenset({"category"})),
    "prioritize": Case("investigating", {"priority": "high", "justification": "Every customer's checkout fails."},
                       "closed", {"priority": "urgent", "justification": "because"},
                       frozenset({"priority", "justification"})),
    "diagnose": Case("investigating", {"steps": "Checked the pool metrics.", "workaround": "Restart the worker."},
                     "resolved", {"steps": "   "}, frozenset({"steps"})),
    "escalate": Case("investigating", {"team": "L3", "reason": "Needs a database expert."}, "open",
                     {"team": "service_desk"}, frozenset({"team", "reason"})),
    "engage_vendor": Case("investigating", {"vendor": "Acme DB", "contact_method": "vendor_portal",
                                            "reference": "ACME-77"}, "open",
                          {"vendor": "Acme DB", "contact_method": "carrier pigeon"}, frozenset({"contact_method"})),
    "link_change": Case("investigating", {"change_id": APPROVED}, "closed", {"change_id": "CHG-1"},
                        frozenset({"change_id"}), refused_roles=READ_ONLY),
    "mitigate": Case("investigating", {"summary": "Failed over to the replica."}, "open", {},
                     frozenset({"summary"})),
    "resolve": Case("investigating", {"summary": "Raised the pool size."}, "open", {"summary": "x" * 5001},
                    frozenset({"summary"})),
    "communicate": Case("investigating", {"recipients": "stakeholders", "message": "We are on it."}, None,
                        {"recipients": "everyone", "message": ""}, frozenset({"recipients", "message"}),
                        refused_roles=READ_ONLY),
    "close": Case("resolved", {"notes": "Confirmed with the reporter."}, "investigating", {"notes": ""},
                  frozenset({"notes"})),
    "reopen": Case("resolved", {"reason": "It came back after the deploy."}, "investigating", {},
                   frozenset({"reason"})),
    "log": Case("investigating", {"description": "Payments time out.", "affected_service": "payments",
                                  "note": "First seen at 09:00."}, "closed",
                {"affected_service": "x" * 201}, frozenset({"affected_service"})),
    "note": Case("investigating", {"body": "Called the DBA."}, None, {"body": "", "occurred_at": "last tuesday"},
                 frozenset({"body", "occurred_at"})),
    "tool_use": Case("investigating", {"tool": "monitoring", "action_summary": "Queried p99 latency.",
                                       "outcome": "Spike at 09:00."}, "closed",
                     {"tool": "hammer", "action_summary": "Hit it.", "outcome": ""}, frozenset({"tool", "outcome"})),
}


def good_fields(world, case: Case) -> dict:
    return {k: (approved_change(world).id if v is APPROVED else v) for k, v in case.good.items()}


def test_every_incident_action_is_covered_by_these_tests():
    """Rule: every SOP action the application offers is exercised here (a new one must be added)."""
    assert set(CASES) == set(ACTIONS)


@pytest.mark.parametrize("action", sorted(CASES))
def test_roles_without_the_duty_are_refused_and_nothing_changes(app_ctx, world, action):
    """Rule (spec §2, §4): auditors (read-only), end users and other non-responders cannot run the
    SOP: NotAllowed, and the incident, its timeline and the audit trail stay as they were."""
    case = CASES[action]
    incident = incident_in(world, case.start)
    data = good_fields(world, case)
    for role in case.refused_roles:
        assert_refused(world, NotAllowed, lambda role=role: service.perform(
            actor=world.actor(role), incident_id=incident.id, action=action, data=data), incident.id)


@pytest.mark.parametrize("action", sorted(a for a, c in CASES.items() if c.wrong_state))
def test_action_from_a_state_the_machine_forbids_is_refused_and_nothing_changes(app_ctx, world, action):
    """Rule (spec §4 state machine): any other move is refused (InvalidTransition, 409) and nothing changes."""
    case = CASES[action]
    incident = incident_in(world, case.wrong_state)
    data = good_fields(world, case)
    error = assert_refused(world, InvalidTransition, lambda: service.perform(
        actor=world.actor("incident_manager"), incident_id=incident.id, action=action, data=data), incident.id)
    assert error.message  # a clear message


@pytest.mark.parametrize("action", sorted(CASES))
def test_bad_fields_are_refused_naming_each_field_and_nothing_changes(app_ctx, world, action):
    """Rule (spec §4): each SOP validates first: ValidationFailed naming every bad field; nothing changes."""
    case = CASES[action]
    incident = incident_in(world, case.start)
    error = assert_refused(world, ValidationFailed, lambda: service.perform(
        actor=world.actor("resolver"), incident_id=incident.id, action=action, data=case.bad), incident.id)
    assert set(error.fields) == case.bad_fields


@pytest.mark.parametrize("action", sorted(CASES))
def test_every_allowed_action_writes_audit_and_timeline(app_ctx, world, action):
    """Rule (spec §4): each SOP changes the rows, writes its audit event and its timeline event."""
    case = CASES[action]
    incident = incident_in(world, case.start)
    written = act(world, incident, action, good_fields(world, case))
    assert written.audit, f"{action} wrote no audit event"
    assert written.timeline, f"{action} wrote no timeline entry"


# -- the state machine, edge by edge (derived from spec §4, not from the code) -----------------------------

SPEC_STATUSES = ("open", "investigating", "escalated", "pending_vendor", "mitigated", "resolved", "closed")
# the action that makes each move (SOP table: acknowledge -> investigating, escalate -> escalated, vendor
# engagement -> pending_vendor, resolve -> resolved, close -> closed; the diagram's reopen)
SPEC_EDGES: dict[tuple[str, str], str] = {
    ("open", "investigating"): "acknowledge",
    ("investigating", "escalated"): "escalate",
    ("escalated", "investigating"): "acknowledge",
    ("investigating", "pending_vendor"): "engage_vendor",
    ("pending_vendor", "investigating"): "acknowledge",
    ("investigating", "mitigated"): "mitigate",
    ("escalated", "mitigated"): "mitigate",
    ("pending_vendor", "mitigated"): "mitigate",
    ("mitigated", "investigating"): "acknowledge",
    ("investigating", "resolved"): "resolve",
    ("escalated", "resolved"): "resolve",
    ("pending_vendor", "resolved"): "resolve",
    ("mitigated", "resolved"): "resolve",
    ("resolved", "closed"): "close",
    ("resolved", "investigating"): "reopen",
}
MOVES = {"acknowledge": "investigating", "escalate": "escalated", "engage_vendor": "pending_vendor",
         "mitigate": "mitigated", "resolve": "resolved", "close": "closed", "reopen": "investigating"}


@pytest.mark.parametrize(("edge", "action"), sorted(SPEC_EDGES.items()), ids=lambda v: "-".join(v)
                         if isinstance(v, tuple) else v)
def test_every_edge_of_the_spec_state_machine_is_allowed(app_ctx, world, edge, action):
    """Rule (spec §4): each move of the state machine is possible with its SOP."""
    start, target = edge
    incident = incident_in(world, start)
    data = good_fields(world, CASES[action])
    w = act(world, incident, action, data, role="service_desk_manager")
    assert w.incident.status == target
    assert w.audit and "status_change" in w.timeline_types


@pytest.mark.parametrize("action", sorted(MOVES))
def test_moves_that_are_not_edges_of_the_spec_state_machine_are_refused(app_ctx, world, action):
    """Rule (spec §4): any other move is refused (InvalidTransition) and nothing changes."""
    target = MOVES[action]
    data = good_fields(world, CASES[action])
    for start in SPEC_STATUSES:
        if start == target or (start, target) in SPEC_EDGES:
            continue  # an edge, or no move at all (e.g. re-escalating to another team)
        incident = incident_in(world, start)
        assert_refused(world, InvalidTransition, lambda incident=incident: service.perform(
            actor=world.actor("service_desk_manager"), incident_id=incident.id, action=action, data=data),
            incident.id)


# -- (a) each action, allowed --------------------------------------------------------------------------

def test_identify_creates_an_open_numbered_incident(app_ctx, world):
    """SOP 2 identify: status open, numbered per workspace, audit `identify`, timeline entry, counted."""
    before = snapshot(world)
    totals = db.session.scalar(select(func.coalesce(func.sum(IncidentTotal.total), 0))
                               .where(IncidentTotal.workspace_id == world.workspace.id))
    first = new_incident(world, role="end_user", description="Pay button spins", labels="Checkout, web",
                         affected_service="checkout")
    second = new_incident(world)
    assert first.status == "open" and first.tenant_id == world.tenant_a.id
    assert first.reference.startswith("INC-") and second.number == first.number + 1
    assert first.reporter_id == world.users["end_user"].id and first.created_by == world.users["end_user"].slug
    assert first.labels == ["checkout", "web"] and first.trigger_source == "manual"
    assert first.detection_source == "user_report" and not first.is_simulation
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.ref_id == str(first.id))))
    assert [e.action for e in events] == ["identify"]
    assert events[0].field_deltas["status"] == [None, "open"]
    entries = timeline.entries(first.id)
    assert [e.event_type for e in entries] == ["status_change"]
    after = snapshot(world)
    assert after["audit_events"] == before["audit_events"] + 2
    assert after["incident_timeline"] == before["incident_timeline"] + 2
    assert db.session.scalar(select(func.sum(IncidentTotal.total))
                             .where(IncidentTotal.workspace_id == world.workspace.id)) == totals + 2


def test_identify_refused_for_an_auditor_and_nothing_changes(app_ctx, world):
    """Rule (spec §2): the auditor is read-only and cannot report an incident."""
    assert_refused(world, NotAllowed, lambda: new_incident(world, role="auditor"))


def test_identify_with_bad_fields_names_them_and_nothing_changes(app_ctx, world):
    """Rule: creating validates first and names every bad field (title, severity, unknown ones)."""
    error = assert_refused(world, ValidationFailed, lambda: service.create_incident(
        actor=world.actor("resolver"),
        data={"title": "x" * 501, "severity": "p9", "tenant": world.tenant_a.slug, "mood": "grumpy"}))
    assert set(error.fields) == {"title", "severity", "mood"}
    error = assert_refused(world, ValidationFailed, lambda: service.create_incident(
        actor=world.actor("resolver"), data={"title": "Disk full", "severity": "p2", "tenant": "no-such-tenant"}))
    assert set(error.fields) == {"tenant"}


def test_acknowledge_takes_it_on_and_tells_the_reporter(app_ctx, world):
    """SOP 6: team/assignee, acknowledgement communication, `investigating`; audit update + notify."""
    incident = new_incident(world, at=past(minutes=10))
    moment = past(minutes=5)
    w = act(world, incident, "acknowledge", {"team": "L2", "assignee": "alice"}, at=moment)
    assert (w.incident.status, w.incident.assigned_team, w.incident.assignee) == ("investigating", "L2", "alice")
    assert w.incident.acknowledged_at == moment
    assert w.audit_actions == ["notify", "update"]
    update = next(e for e in w.audit if e.action == "update")
    assert update.field_deltas["status"] == ["open", "investigating"]
    assert w.timeline_types == ["assignment", "communication", "status_change"]
    message = db.session.scalars(select(Communication).where(Communication.incident_id == incident.id)).one()
    assert (message.recipients, message.template) == ("end_users", "acknowledgement")


def test_acknowledge_after_escalation_takes_it_back_without_a_new_acknowledgement(app_ctx, world):
    """SOP 6 again from escalated: back to investigating, audit update only; first ack time kept."""
    incident = incident_in(world, "escalated")
    first_ack = incident.acknowledged_at
    w = act(world, incident, "acknowledge", {"assignee": "carol"}, role="incident_manager")
    assert w.incident.status == "investigating" and w.incident.acknowledged_at == first_ack
    assert w.incident.assigned_team == "L3" and w.incident.assignee == "carol"
    assert w.audit_actions == ["update"]
    assert w.timeline_types == ["assignment", "status_change"]


def test_assign_sets_team_and_assignee(app_ctx, world):
    """SOP 6 assign: audit update with the deltas; an assignment timeline entry; status unchanged."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "assign", {"team": "L3", "assignee": "bob"})
    assert (w.incident.assigned_team, w.incident.assignee, w.incident.status) == ("L3", "bob", "investigating")
    assert w.audit_actions == ["update"]
    assert w.audit[0].field_deltas["assigned_team"] == ["service_desk", "L3"]
    assert w.timeline_types == ["assignment"]


def test_categorize_records_category_and_subcategory(app_ctx, world):
    """SOP 4: category + subcategory; audit update field=category."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "categorize", {"category": "software", "subcategory": "database"})
    assert (w.incident.category, w.incident.subcategory) == ("software", "database")
    assert w.audit_actions == ["update"]
    assert w.audit[0].context["field"] == "category"
    assert w.audit[0].field_deltas["category"] == [None, "software"]
    assert w.timeline_types == ["note"]


def test_prioritize_needs_and_keeps_a_justification(app_ctx, world):
    """SOP 5: priority + justification; audit update field=priority; same severity keeps the due times."""
    incident = incident_in(world, "investigating")
    due = (incident.acknowledge_due_at, incident.resolve_due_at)
    w = act(world, incident, "prioritize", {"priority": "high", "justification": "Every customer's checkout fails."})
    assert w.incident.priority == "high" and w.incident.priority_overridden
    assert w.incident.priority_justification == "Every customer's checkout fails."
    assert (w.incident.acknowledge_due_at, w.incident.resolve_due_at) == due
    assert w.audit_actions == ["update"]
    assert w.audit[0].context["field"] == "priority"
    assert w.audit[0].field_deltas == {"priority": ["medium", "high"]}
    assert w.timeline_types == ["note"]


def test_diagnose_records_steps_and_the_workaround_flag(app_ctx, world):
    """SOP 7: diagnostic steps, workaround flag; audit update."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "diagnose", {"steps": "Checked the pool metrics.", "workaround": "Restart the worker."})
    assert w.incident.workaround_available and w.incident.workaround == "Restart the worker."
    assert w.audit_actions == ["update"]
    assert w.audit[0].field_deltas["workaround_available"] == [False, True]
    assert w.timeline_types == ["note"]


def test_escalate_moves_to_the_target_team_and_notifies(app_ctx, world):
    """SOP 8: target team + reason, `escalated`, notify; audit escalate (+ notify for the message)."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "escalate", {"team": "L3", "reason": "Needs a database expert."})
    assert (w.incident.status, w.incident.assigned_team) == ("escalated", "L3")
    assert w.audit_actions == ["escalate", "notify"]
    escalation = next(e for e in w.audit if e.action == "escalate")
    assert escalation.field_deltas["status"] == ["investigating", "escalated"]
    assert escalation.context["reason"] == "Needs a database expert."
    assert w.timeline_types == ["communication", "escalation", "status_change"]


def test_engage_vendor_waits_on_the_vendor_with_the_clock_paused(app_ctx, world):
    """SOP 9: vendor + contact method, `pending_vendor`, SLA paused; audit vendor_engagement."""
    incident = new_incident(world, at=past(minutes=30))
    act(world, incident, "acknowledge", {}, at=past(minutes=20))
    moment = past(minutes=10)
    w = act(world, incident, "engage_vendor", {"vendor": "Acme DB", "contact_method": "vendor_portal",
                                               "reference": "ACME-77"}, at=moment)
    assert w.incident.status == "pending_vendor" and w.incident.sla_paused_at == moment
    engagement = db.session.scalars(select(VendorEngagement).where(VendorEngagement.incident_id == incident.id)).one()
    assert (engagement.vendor, engagement.contact_method, engagement.reference) == ("Acme DB", "vendor_portal",
                                                                                    "ACME-77")
    assert w.audit_actions == ["vendor_engagement"]
    assert w.audit[0].context["contact_method"] == "vendor_portal"
    assert w.timeline_types == ["note", "status_change"]


def test_link_change_links_an_approved_change(app_ctx, world):
    """SOP 10: link an approved change; audit update field=change_link."""
    incident = incident_in(world, "investigating")
    change = approved_change(world)
    w = act(world, incident, "link_change", {"change_id": str(change.id)})
    assert db.session.get(IncidentChangeLink, (incident.id, change.id)) is not None
    assert w.audit_actions == ["update"]
    assert w.audit[0].context["field"] == "change_link"
    assert w.audit[0].field_deltas == {"change_link": [None, change.reference]}
    assert w.timeline_types == ["note"]


def test_mitigate_records_the_mitigation(app_ctx, world):
    """investigating -> mitigated with a summary; audit update; status change on the timeline."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "mitigate", {"summary": "Failed over to the replica."})
    assert w.incident.status == "mitigated" and w.incident.mitigated_at is not None
    assert w.audit_actions == ["update"]
    assert w.audit[0].field_deltas["status"] == ["investigating", "mitigated"]
    assert w.timeline_types == ["status_change"]


@pytest.mark.parametrize("start", ["investigating", "escalated", "pending_vendor", "mitigated"])
def test_resolve_records_the_resolution(app_ctx, world, start):
    """SOP 11: resolution summary, `resolved` (from investigating, escalated, pending_vendor, mitigated)."""
    incident = incident_in(world, start)
    w = act(world, incident, "resolve", {"summary": "Raised the pool size."})
    assert w.incident.status == "resolved" and w.incident.resolved_at is not None
    assert w.incident.resolution_summary == "Raised the pool size."
    assert w.audit_actions == ["resolve"]
    assert w.audit[0].field_deltas["status"] == [start, "resolved"]
    assert w.timeline_types == ["status_change"]


def test_communicate_records_the_message(app_ctx, world):
    """SOP 12: message to a recipient group; audit notify; a communication on the timeline."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "communicate", {"recipients": "executives", "message": "Checkout is degraded."},
            role="service_desk_analyst")
    message = db.session.scalars(select(Communication).where(Communication.incident_id == incident.id)
                                 .order_by(Communication.created_at.desc())).first()
    assert (message.recipients, message.message) == ("executives", "Checkout is degraded.")
    assert w.audit_actions == ["notify"]
    assert w.timeline_types == ["communication"]
    assert w.incident.status == "investigating"


def test_close_closes_a_resolved_incident(app_ctx, world):
    """SOP 13: closure notes, `closed` (medium priority: any responder); audit close."""
    incident = incident_in(world, "resolved")
    w = act(world, incident, "close", {"notes": "Confirmed with the reporter."}, role="service_desk_analyst")
    assert w.incident.status == "closed" and w.incident.closed_at is not None
    assert w.incident.closure_notes == "Confirmed with the reporter."
    assert w.audit_actions == ["close"]
    assert w.timeline_types == ["status_change"]


def test_reopen_takes_a_resolved_incident_back_to_investigating(app_ctx, world):
    """Spec §4: resolved --reopen--> investigating; the resolution is undone and counted."""
    incident = incident_in(world, "resolved")
    w = act(world, incident, "reopen", {"reason": "It came back after the deploy."})
    assert w.incident.status == "investigating" and w.incident.resolved_at is None
    assert w.incident.reopened_count == 1
    assert w.audit_actions == ["update"]
    assert w.audit[0].field_deltas["status"] == ["resolved", "investigating"]
    assert w.timeline_types == ["status_change"]


def test_log_records_description_service_and_first_note(app_ctx, world):
    """SOP 3 log: description, affected service, initial note; audit create."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "log", {"description": "Payments time out.", "affected_service": "payments",
                                     "note": "First seen at 09:00."})
    assert (w.incident.description, w.incident.affected_service) == ("Payments time out.", "payments")
    assert w.audit_actions == ["create"]
    assert w.audit[0].field_deltas == {"description": ["", "Payments time out."],
                                       "affected_service": [None, "payments"]}
    assert w.timeline_types == ["note"]


def test_log_without_a_note_still_leaves_a_timeline_entry(app_ctx, world):
    """Spec §4: every SOP writes its audit event *and* its timeline event — logging only a new
    description is still a change the timeline should show."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "log", {"description": "Payments time out for card payments only."})
    assert w.audit_actions == ["create"]
    assert len(w.timeline) == 1


def test_log_with_nothing_to_log_is_refused(app_ctx, world):
    """SOP 3: a log that changes nothing is refused (ValidationFailed) and writes nothing."""
    incident = incident_in(world, "investigating")
    assert_refused(world, ValidationFailed, lambda: service.perform(
        actor=world.actor("resolver"), incident_id=incident.id, action="log", data={}), incident.id)


def test_note_adds_a_timeline_note(app_ctx, world):
    """A timeline note (allowed even once closed); audit update."""
    incident = incident_in(world, "closed")
    w = act(world, incident, "note", {"body": "Customer confirmed next day."})
    assert w.audit_actions == ["update"]
    assert w.timeline_types == ["note"] and w.timeline[0].body == "Customer confirmed next day."
    assert w.incident.status == "closed"


def test_tool_use_records_the_tool_action(app_ctx, world):
    """SOP 17: tool action and outcome recorded; audit tool_use."""
    incident = incident_in(world, "investigating")
    w = act(world, incident, "tool_use", {"tool": "monitoring", "action_summary": "Queried p99 latency.",
                                          "outcome": "Spike at 09:00."})
    usage = db.session.scalars(select(ToolUsage).where(ToolUsage.incident_id == incident.id)).one()
    assert (usage.tool, usage.outcome, usage.executor) == ("monitoring", "Spike at 09:00.",
                                                           world.users["resolver"].slug)
    assert w.audit_actions == ["tool_use"]
    assert w.timeline_types == ["note"]


# -- simulation (SOP 18) --------------------------------------------------------------------------------

def simulation_data(world, **extra: Any) -> dict:
    return {"title": "Drill: database failover", "severity": "p1", "tenant": world.tenant_a.slug,
            "scenario": "Primary database lost", "scope": "Payments only", **extra}


def test_simulation_is_flagged_audited_as_simulation_and_kept_out_of_totals(app_ctx, world):
    """SOP 18: an incident manager runs a drill; flagged, audit `simulation` (not identify), no KPI count."""
    before = snapshot(world)
    totals = db.session.scalar(select(func.coalesce(func.sum(IncidentTotal.total), 0))
                               .where(IncidentTotal.workspace_id == world.workspace.id))
    incident = service.start_simulation(actor=world.actor("incident_manager"), data=simulation_data(world))
    assert incident.is_simulation and incident.status == "open"
    assert incident.simulation == {"scenario": "Primary database lost", "scope": "Payments only"}
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.ref_id == str(incident.id))))
    assert [e.action for e in events] == ["simulation"]
    assert [e.event_type for e in timeline.entries(incident.id)] == ["status_change"]
    after = snapshot(world)
    assert after["audit_events"] == before["audit_events"] + 1
    assert after["incident_timeline"] == before["incident_timeline"] + 1
    assert db.session.scalar(select(func.coalesce(func.sum(IncidentTotal.total), 0))
                             .where(IncidentTotal.workspace_id == world.workspace.id)) == totals


@pytest.mark.parametrize("role", ["resolver", "service_desk_manager", "auditor", "end_user"])
def test_only_incident_managers_run_simulations(app_ctx, world, role):
    """Rule (SOP 18): only the incident manager runs a drill; others NotAllowed, nothing changes."""
    assert_refused(world, NotAllowed, lambda: service.start_simulation(actor=world.actor(role),
                                                                       data=simulation_data(world)))


def test_simulation_needs_scenario_and_scope(app_ctx, world):
    """Rule: a drill without scenario and scope is refused naming both; nothing changes."""
    error = assert_refused(world, ValidationFailed, lambda: service.start_simulation(
        actor=world.actor("incident_manager"), data=simulation_data(world, scenario="", scope=None)))
    assert set(error.fields) == {"scenario", "scope"}


# -- segregation of duties ---------------------------------------------------------------------------------

def resolved_high_priority(world, reporter: str) -> Incident:
    incident = incident_in(world, "resolved", severity="p1", role=reporter)
    assert incident.priority == "high"
    return incident


def close_by(world, incident: Incident, role: str) -> Callable[[], Incident]:
    return lambda: service.perform(actor=world.actor(role), incident_id=incident.id, action="close",
                                   data={"notes": "All clear."})


def test_the_reporter_of_a_high_priority_incident_cannot_close_it(app_ctx, world):
    """Rule (spec §2/§4): the reporter of a high-priority incident cannot close it, even as incident manager."""
    incident = resolved_high_priority(world, reporter="incident_manager")
    signed_off_review(world, incident)
    assert_refused(world, NotAllowed, close_by(world, incident, "incident_manager"), incident.id)
    w = act(world, incident, "close", {"notes": "All clear."}, role="service_desk_manager")
    assert w.incident.status == "closed" and w.audit_actions == ["close"]


@pytest.mark.parametrize("role", ["resolver", "service_desk_analyst"])
def test_responders_who_are_not_managers_cannot_close_high_priority(app_ctx, world, role):
    """Rule (spec §4): a high-priority incident is closed by an incident manager or service desk manager."""
    incident = resolved_high_priority(world, reporter="end_user")
    signed_off_review(world, incident)
    assert_refused(world, NotAllowed, close_by(world, incident, role), incident.id)


def test_closing_high_priority_needs_a_signed_off_review(app_ctx, world):
    """Rule (spec §4/§6): no PIR, or a draft one -> InvalidTransition, nothing changes; signed off -> closes."""
    incident = resolved_high_priority(world, reporter="service_desk_analyst")
    assert_refused(world, InvalidTransition, close_by(world, incident, "incident_manager"), incident.id)
    reviews.save_review(actor=world.actor("service_desk_manager"), incident_id=incident.id,
                        summary="The pool ran dry under the sale traffic; raised and alerted.")
    assert_refused(world, InvalidTransition, close_by(world, incident, "incident_manager"), incident.id)
    reviews.sign_off(actor=world.actor("service_desk_manager"), incident_id=incident.id)
    w = act(world, incident, "close", {"notes": "All clear."}, role="incident_manager")
    assert w.incident.status == "closed" and w.audit_actions == ["close"]


def test_a_change_requester_cannot_approve_their_own_change(app_ctx, world):
    """Rule (spec §2/§6): the requester of a change cannot approve it; it stays pending, nothing audited."""
    change = changes.create_change(actor=world.actor("change_manager"), tenant=world.tenant_a.slug,
                                   summary="Rotate the TLS certificate", risk="medium")
    assert_refused(world, NotAllowed, lambda: changes.decide(actor=world.actor("change_manager"),
                                                             change_id=change.id, approve=True))
    assert db.session.get(ChangeRequest, change.id).approval_status == "pending"


@pytest.mark.parametrize("which", ["pending", "rejected", "other_tenant", "missing", "already_linked"])
def test_link_change_refuses_anything_but_an_unlinked_approved_change_of_the_tenant(app_ctx, world, which):
    """Rule (SOP 10): only an approved change of the same tenant links (once); otherwise ValidationFailed
    naming change_id, and nothing changes."""
    incident = incident_in(world, "investigating")
    if which == "pending":
        change_id = changes.create_change(actor=world.actor("resolver"), tenant=world.tenant_a.slug,
                                          summary="Pending change", risk="low").id
    elif which == "rejected":
        pending = changes.create_change(actor=world.actor("resolver"), tenant=world.tenant_a.slug,
                                        summary="Rejected change", risk="low")
        change_id = changes.decide(actor=world.actor("change_manager"), change_id=pending.id, approve=False).id
    elif which == "other_tenant":
        change_id = approved_change(world, tenant=world.tenant_b).id
    elif which == "missing":
        change_id = uuid.uuid4()
    else:
        change_id = approved_change(world).id
        service.perform(actor=world.actor("resolver"), incident_id=incident.id, action="link_change",
                        data={"change_id": str(change_id)})
    error = assert_refused(world, ValidationFailed, lambda: service.perform(
        actor=world.actor("resolver"), incident_id=incident.id, action="link_change",
        data={"change_id": str(change_id)}), incident.id)
    assert set(error.fields) == {"change_id"}


# -- retroactive notes and corrections ---------------------------------------------------------------------

def test_a_retroactive_note_keeps_its_time_and_sorts_before_later_entries(app_ctx, world):
    """Rule (spec §4 timeline): occurred_at may be earlier than created_at; entries sort by when things happened."""
    incident = incident_in(world, "investigating")
    earlier = past(hours=2)
    act(world, incident, "note", {"body": "Customer first noticed at 07:00.", "occurred_at": earlier.isoformat()})
    later = act(world, incident, "note", {"body": "Now monitoring."})
    entries = timeline.entries(incident.id)
    assert entries[0].body == "Customer first noticed at 07:00." and entries[0].occurred_at == earlier
    assert entries[0].occurred_at < incident.created_at
    assert entries[-1].id == later.timeline[0].id
    assert [e.occurred_at for e in entries] == sorted(e.occurred_at for e in entries)


def test_a_note_in_the_future_is_refused(app_ctx, world):
    """Rule: a timeline entry cannot happen in the future (ValidationFailed on occurred_at); nothing changes."""
    incident = incident_in(world, "investigating")
    future = datetime.now(UTC) + timedelta(hours=1)
    error = assert_refused(world, ValidationFailed, lambda: service.perform(
        actor=world.actor("resolver"), incident_id=incident.id, action="note",
        data={"body": "From tomorrow.", "occurred_at": future.isoformat()}), incident.id)
    assert set(error.fields) == {"occurred_at"}


def test_a_correction_references_the_entry_it_corrects(app_ctx, world):
    """Rule (spec §4 timeline, append-only): a correction is a new entry pointing at the corrected one."""
    incident = incident_in(world, "investigating")
    wrong = act(world, incident, "note", {"body": "Started at 08:00."}).timeline[0]
    fix = act(world, incident, "note", {"body": "Correction: started at 07:30.", "corrects": str(wrong.id)})
    assert fix.timeline[0].corrects_id == wrong.id
    assert fix.audit[0].context["corrects"] == str(wrong.id)
    db.session.expire_all()
    assert db.session.get(TimelineEntry, wrong.id).body == "Started at 08:00."  # the original stays


def test_a_correction_of_another_incidents_entry_is_refused(app_ctx, world):
    """Rule: a correction can only point at an entry of the same incident."""
    other = incident_in(world, "investigating")
    foreign = timeline.entries(other.id)[0]
    incident = incident_in(world, "investigating")
    error = assert_refused(world, ValidationFailed, lambda: service.perform(
        actor=world.actor("resolver"), incident_id=incident.id, action="note",
        data={"body": "Fix.", "corrects": str(foreign.id)}), incident.id)
    assert set(error.fields) == {"corrects"}


# -- SLA ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("severity", sorted(SPEC_SLO))
def test_due_times_at_creation_follow_the_spec_defaults(app_ctx, world, severity):
    """Rule (spec §4 table): p1 5 min/1 h, p2 15 min/4 h, p3 1 h/24 h, p4 4 h/72 h; priority from severity."""
    base = past(hours=1)
    incident = new_incident(world, severity=severity, at=base)
    ack, resolve, priority = SPEC_SLO[severity]
    assert incident.acknowledge_due_at == base + timedelta(minutes=ack)
    assert incident.resolve_due_at == base + timedelta(minutes=resolve)
    assert incident.priority == priority
    assert not incident.acknowledge_breached and not incident.resolve_breached


def test_due_times_follow_the_workspaces_own_policy(app_ctx, world):
    """Rule (spec §4): a workspace may change the defaults (sla_policies rows); others keep the spec's."""
    db.session.add(SlaPolicy(workspace_id=world.workspace.id, severity="p2", acknowledge_minutes=30,
                             resolve_minutes=480, default_priority="medium"))
    db.session.commit()
    base = past(hours=1)
    changed = new_incident(world, severity="p2", at=base)
    assert changed.acknowledge_due_at == base + timedelta(minutes=30)
    assert changed.resolve_due_at == base + timedelta(minutes=480)
    assert changed.priority == "medium"
    default = new_incident(world, severity="p1", at=base)
    assert default.acknowledge_due_at == base + timedelta(minutes=5)
    assert default.resolve_due_at == base + timedelta(minutes=60)


def test_a_new_severity_recomputes_the_due_times(app_ctx, world):
    """Rule (spec §4 SLA): due times are recomputed when the severity changes (from creation time)."""
    base = past(hours=3)
    incident = new_incident(world, severity="p4", at=base)
    act(world, incident, "acknowledge", {}, at=base + timedelta(minutes=1))
    w = act(world, incident, "prioritize", {"priority": "high", "severity": "p1",
                                            "justification": "All regions are down now."}, at=base + timedelta(minutes=2))
    assert w.incident.severity == "p1" and w.incident.priority == "high"
    assert w.incident.acknowledge_due_at == base + timedelta(minutes=5)
    assert w.incident.resolve_due_at == base + timedelta(minutes=60)
    assert w.audit[0].field_deltas["severity"] == ["p4", "p1"]
    assert "resolve_due_at" in w.audit[0].field_deltas


def test_waiting_on_a_vendor_pauses_the_resolve_clock(app_ctx, world):
    """Rule (spec §4 SLA): the clock is paused while pending_vendor; leaving it pushes resolve_due_at
    back by the time paused."""
    base = past(days=3)
    incident = new_incident(world, severity="p3", at=base)
    act(world, incident, "acknowledge", {}, at=base + timedelta(minutes=5))
    due = incident.resolve_due_at
    engaged = act(world, incident, "engage_vendor", {"vendor": "Acme DB", "contact_method": "phone"},
                  at=base + timedelta(minutes=10))
    assert engaged.incident.sla_paused_at == base + timedelta(minutes=10)
    back = act(world, incident, "acknowledge", {}, at=base + timedelta(minutes=100))
    assert back.incident.status == "investigating" and back.incident.sla_paused_at is None
    assert back.incident.resolve_due_at == due + timedelta(minutes=90)
    assert back.incident.sla_paused_seconds == 90 * 60
    engagement = db.session.scalars(select(VendorEngagement).where(VendorEngagement.incident_id == incident.id)).one()
    assert engagement.ended_at == base + timedelta(minutes=100)


def test_resolving_straight_from_pending_vendor_also_stops_the_pause(app_ctx, world):
    """Rule: leaving pending_vendor by any edge (here resolve) ends the pause and credits the paused time."""
    base = past(days=3)
    incident = new_incident(world, severity="p3", at=base)
    act(world, incident, "acknowledge", {}, at=base + timedelta(minutes=5))
    due = incident.resolve_due_at
    act(world, incident, "engage_vendor", {"vendor": "Acme DB", "contact_method": "API"},
        at=base + timedelta(minutes=10))
    w = act(world, incident, "resolve", {"summary": "Vendor patched it."}, at=base + timedelta(minutes=40))
    assert w.incident.sla_paused_at is None and w.incident.resolve_due_at == due + timedelta(minutes=30)


def test_a_paused_incident_does_not_breach_its_resolve_time(app_ctx, world):
    """Rule (spec §4 SLA): while pending_vendor the resolve clock is stopped, so the scan flags nothing."""
    base = past(days=4)
    incident = new_incident(world, severity="p3", at=base)
    act(world, incident, "acknowledge", {}, at=base + timedelta(minutes=5))
    act(world, incident, "engage_vendor", {"vendor": "Acme DB", "contact_method": "email"},
        at=base + timedelta(minutes=10))
    sla.scan_breaches(now=base + timedelta(hours=30))
    db.session.expire_all()
    row = db.session.get(Incident, incident.id)
    assert not row.resolve_breached and not row.acknowledge_breached and row.status == "pending_vendor"


def breach_entries(incident_id) -> list[TimelineEntry]:
    return [e for e in timeline.entries(incident_id) if e.event_type == "automated_alert"]


def breach_alerts(incident_id) -> list[Alert]:
    return list(db.session.scalars(select(Alert).where(Alert.kind == "sla_breach",
                                                       Alert.data["incident_id"].astext == str(incident_id))))


def test_an_overdue_incident_is_flagged_once(app_ctx, world):
    """Rule (spec §4 SLA): the scan flags a breach, adds one timeline event and one alert — once, however
    often it runs; a medium-priority incident is not escalated."""
    base = past(days=5)
    incident = new_incident(world, severity="p3", at=base)
    moment = base + timedelta(hours=2)
    sla.scan_breaches(now=moment)
    sla.scan_breaches(now=moment + timedelta(minutes=1))
    db.session.expire_all()
    row = db.session.get(Incident, incident.id)
    assert row.acknowledge_breached and not row.resolve_breached and row.breached_at == moment
    assert row.status == "open"
    assert len(breach_entries(incident.id)) == 1
    assert len(breach_alerts(incident.id)) == 1
    updates = list(db.session.scalars(select(AuditEvent).where(AuditEvent.ref_id == str(incident.id),
                                                               AuditEvent.action == "update")))
    assert [e.field_deltas for e in updates] == [{"acknowledge_breached": [False, True]}]


def test_a_high_priority_breach_escalates_to_the_incident_manager(app_ctx, world):
    """Rule (spec §4 SLA): a breach of a high-priority incident escalates it automatically to the
    incident manager (audited, on the timeline) and alerts them. An open incident stays open (the
    state machine leaves open only by acknowledgement) but is routed to the incident manager."""
    base = past(days=6)
    incident = new_incident(world, severity="p2", at=base)
    sla.scan_breaches(now=base + timedelta(minutes=20))
    db.session.expire_all()
    row = db.session.get(Incident, incident.id)
    assert (row.status, row.assigned_team) == ("open", "incident_manager")
    assert row.acknowledge_breached
    types = [e.event_type for e in timeline.entries(incident.id)]
    assert types.count("automated_alert") == 1 and types.count("escalation") == 1
    actions = sorted(db.session.scalars(select(AuditEvent.action).where(AuditEvent.ref_id == str(incident.id))))
    assert actions == ["escalate", "identify", "update"]
    [alert] = breach_alerts(incident.id)
    assert alert.audience_role == "incident_manager"


def test_a_resolve_breach_of_a_high_priority_incident_in_progress_escalates(app_ctx, world):
    """Rule: the resolve clock breaches too; high priority while investigating -> escalated to incident manager."""
    base = past(days=7)
    incident = new_incident(world, severity="p1", at=base)
    act(world, incident, "acknowledge", {"team": "L2"}, at=base + timedelta(minutes=1))
    sla.scan_breaches(now=base + timedelta(minutes=61))
    db.session.expire_all()
    row = db.session.get(Incident, incident.id)
    assert row.resolve_breached and not row.acknowledge_breached
    assert (row.status, row.assigned_team) == ("escalated", "incident_manager")
    assert len(breach_entries(incident.id)) == 1 and len(breach_alerts(incident.id)) == 1


def test_two_scans_at_the_same_moment_act_on_a_breach_once(app_ctx, world):
    """Rule (spec §1/§4): with several workers scanning at once, a breach still gets exactly one timeline
    event and one alert."""
    app = app_ctx
    base = past(days=200)
    incident = new_incident(world, severity="p3", at=base)
    db.session.rollback()
    moment = base + timedelta(hours=2)
    barrier, errors = threading.Barrier(2), []

    def scan() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                sla.scan_breaches(now=moment)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).acknowledge_breached
    assert len(breach_entries(incident.id)) == 1
    assert len(breach_alerts(incident.id)) == 1


def test_recompute_applies_a_changed_policy_to_existing_incidents(app_ctx, world):
    """Rule (spec §4: a workspace may change its targets): recompute moves the due times of its incidents
    (keeping the vendor pause), only in the tenant asked for."""
    start = past(minutes=40)
    mine = new_incident(world, severity="p3", at=start)
    act(world, mine, "acknowledge", {}, at=start + timedelta(minutes=1))
    act(world, mine, "engage_vendor", {"vendor": "Acme", "contact_method": "email"}, at=start + timedelta(minutes=5))
    act(world, mine, "acknowledge", {}, at=start + timedelta(minutes=15))
    theirs = new_incident(world, severity="p3", tenant=world.tenant_b, at=start)
    theirs_due = (theirs.acknowledge_due_at, theirs.resolve_due_at)
    db.session.add(SlaPolicy(workspace_id=world.workspace.id, severity="p3", acknowledge_minutes=120,
                             resolve_minutes=2880, default_priority="medium"))
    db.session.commit()
    sla.recompute_workspace(workspace_id=world.workspace.id, tenant_id=world.tenant_a.id)
    db.session.expire_all()
    mine, theirs = db.session.get(Incident, mine.id), db.session.get(Incident, theirs.id)
    assert mine.acknowledge_due_at == start + timedelta(minutes=120)
    assert mine.resolve_due_at == start + timedelta(minutes=2880, seconds=600)
    assert not mine.acknowledge_breached and not mine.resolve_breached
    assert (theirs.acknowledge_due_at, theirs.resolve_due_at) == theirs_due


# -- tenant scope ------------------------------------------------------------------------------------------

def limited_actor(world) -> Actor:
    user = world.limited
    return Actor(kind="user", id=user.id, label=user.email, slug=user.slug, workspace_id=world.workspace.id,
                 role="auditor", tenant_ids=(world.tenant_a.id,))


def test_an_incident_of_another_tenant_is_not_found(app_ctx, world):
    """Rule (spec §2): a row of another tenant answers exactly like a missing one (NotFound)."""
    theirs = new_incident(world, tenant=world.tenant_b)
    mine = new_incident(world, tenant=world.tenant_a)
    with pytest.raises(NotFound):
        service.get_incident(actor=limited_actor(world), incident_id=theirs.id)
    assert service.get_incident(actor=limited_actor(world), incident_id=mine.id).id == mine.id
    only_a = world.actor("resolver", tenant_ids=(world.tenant_a.id,))
    with pytest.raises(NotFound):
        service.get_incident(actor=only_a, incident_id=theirs.id)
    with pytest.raises(NotFound):
        service.get_incident(actor=only_a, incident_id=uuid.uuid4())


@pytest.mark.parametrize("action", sorted(CASES))
def test_acting_on_another_tenants_incident_is_not_found_and_changes_nothing(app_ctx, world, action):
    """Rule (spec §2): acting on another tenant's incident answers NotFound (never 403) and changes nothing."""
    case = CASES[action]
    theirs = drive(world, new_incident(world, tenant=world.tenant_b), case.start)
    data = good_fields(world, case)
    only_a = world.actor("incident_manager", tenant_ids=(world.tenant_a.id,))
    assert_refused(world, NotFound, lambda: service.perform(actor=only_a, incident_id=theirs.id, action=action,
                                                            data=data), theirs.id)


def test_an_incident_of_another_workspace_is_not_found(app_ctx, world, other_world):
    """Rule (spec §2): nobody sees or touches a row outside their workspace."""
    theirs = new_incident(other_world, tenant=other_world.tenant_a)
    with pytest.raises(NotFound):
        service.get_incident(actor=world.actor("incident_manager"), incident_id=theirs.id)
    assert_refused(world, NotFound, lambda: service.perform(
        actor=world.actor("incident_manager"), incident_id=theirs.id, action="acknowledge", data={}))


def test_reporting_for_a_tenant_outside_ones_view_is_refused(app_ctx, world):
    """Rule (spec §2): a tenant outside the actor's view is treated as unknown (ValidationFailed on tenant)."""
    only_a = world.actor("resolver", tenant_ids=(world.tenant_a.id,))
    error = assert_refused(world, ValidationFailed, lambda: service.create_incident(
        actor=only_a, data={"title": "Disk full", "severity": "p3", "tenant": world.tenant_b.slug}))
    assert set(error.fields) == {"tenant"}
