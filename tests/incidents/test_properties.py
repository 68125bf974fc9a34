"""Random sequences of incident SOPs, tried by random roles with plausible (sometimes bad) fields.

Rules checked after every step (spec §4, §3):
- the status is always one of the spec's statuses;
- every change of status is an edge of the spec's state machine, made by the SOP that makes that move;
- a step that succeeds writes at least one audit event for the incident;
- a step that is refused (any DomainError) writes no audit event, no timeline entry, and leaves the
  incident row exactly as it was.
The allowed edges below are written from the spec's diagram and SOP table, not read from the code.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.changes import service as changes
from app.errors import DomainError
from app.extensions import db
from app.incidents import service, timeline
from app.incidents.models import Incident, TimelineEntry
from app.reviews import service as reviews

SPEC_STATUSES = frozenset({"open", "investigating", "escalated", "pending_vendor", "mitigated", "resolved", "closed"})

# (from, to) -> the SOP that makes the move (spec §4 diagram and SOP table)
_ANY_WORK = ("investigating", "escalated", "pending_vendor")
SPEC_EDGES: dict[tuple[str, str], str] = {
    ("open", "investigating"): "acknowledge",
    ("investigating", "escalated"): "escalate",
    ("escalated", "investigating"): "acknowledge",
    ("investigating", "pending_vendor"): "engage_vendor",
    ("pending_vendor", "investigating"): "acknowledge",
    ("mitigated", "investigating"): "acknowledge",
    **{(state, "mitigated"): "mitigate" for state in _ANY_WORK},
    **{(state, "resolved"): "resolve" for state in _ANY_WORK + ("mitigated",)},
    ("resolved", "closed"): "close",
    ("resolved", "investigating"): "reopen",
}

ROLES = ("end_user", "service_desk_analyst", "resolver", "service_desk_manager", "incident_manager",
         "change_manager", "auditor", "workspace_admin")
# weighted towards the people who work incidents so that walks get somewhere; everyone still tries
ACTING_ROLES = ROLES + ("service_desk_analyst", "resolver", "service_desk_manager", "incident_manager") * 3
REPORTERS = tuple(r for r in ROLES if r != "auditor")

PAST, FUTURE, FIRST_ENTRY, APPROVED, PENDING = "<past>", "<future>", "<first entry>", "<approved>", "<pending>"
# mostly plausible values, sometimes a bad one (to exercise refusals)
TEXT = st.sampled_from(["Checked the logs.", "Customer impact widened.", "Vendor confirmed the fix.", ""])


def _fields(required: dict, optional: dict | None = None):
    return st.fixed_dictionaries({k: (v if isinstance(v, st.SearchStrategy) else st.just(v))
                                  for k, v in required.items()}, optional=optional or {})


FIELDS = {
    "acknowledge": _fields({}, {"team": st.sampled_from(["L2", "devops", "service_desk", "nowhere"]),
                                "assignee": st.sampled_from(["alice", "bob"])}),
    "assign": _fields({"team": st.sampled_from(["L1", "L3", "facilities", "mars"])},
                      {"assignee": st.sampled_from(["alice", "bob"])}),
    "categorize": _fields({"category": st.sampled_from(["hardware", "software", "security", "weather"])},
                          {"subcategory": st.sampled_from(["database", "network"])}),
    "prioritize": _fields({"priority": st.sampled_from(["high", "medium", "low", "urgent"]),
                           "justification": st.sampled_from(["Every customer is affected now.", "short"])},
                          {"severity": st.sampled_from(["p1", "p2", "p3", "p4", "p0"])}),
    "diagnose": _fields({"steps": TEXT}, {"workaround": st.sampled_from(["Restart the worker.", ""])}),
    "escalate": _fields({"team": st.sampled_from(["L3", "incident_manager", "devops", "service_desk"]),
                         "reason": TEXT}),
    "engage_vendor": _fields({"vendor": st.sampled_from(["Acme DB", ""]),
                              "contact_method": st.sampled_from(["phone", "email", "vendor_portal", "API", "fax"])},
                             {"reference": st.just("ACME-1")}),
    "link_change": _fields({"change_id": st.sampled_from([APPROVED, PENDING, "not-an-id"])}),
    "mitigate": _fields({"summary": TEXT}),
    "resolve": _fields({"summary": TEXT}),
    "communicate": _fields({"recipients": st.sampled_from(["end_users", "stakeholders", "executives", "IT_staff",
                                                           "everyone"]),
                            "message": TEXT}),
    "close": _fields({"notes": TEXT}),
    "reopen": _fields({"reason": TEXT}),
    "log": _fields({}, {"description": st.sampled_from(["Payments time out.", "x" * 50_001]),
                        "affected_service": st.sampled_from(["payments", "checkout"]),
                        "note": st.sampled_from(["First seen at 09:00.", ""])}),
    "note": _fields({"body": TEXT}, {"occurred_at": st.sampled_from([PAST, FUTURE, "not a time"]),
                                     "corrects": st.sampled_from([FIRST_ENTRY, str(uuid.UUID(int=7))])}),
    "tool_use": _fields({"tool": st.sampled_from(["monitoring", "AIOps", "hammer"]),
                         "action_summary": TEXT, "outcome": st.sampled_from(["Spike at 09:00.", ""])}),
    # not an incident action: a manager writes and signs off the PIR, so high-priority closes can happen
    "review": _fields({}),
}

ACTIONS_TRIED = tuple(sorted(FIELDS))
# what the spec lets each state do next; walks pick from it half of the time (so that they reach the
# later states) and from every action the other half (so that forbidden moves are tried everywhere)
SPEC_NEXT = {state: tuple(sorted({action for (start, _), action in SPEC_EDGES.items() if start == state}))
             for state in SPEC_STATUSES}


def _next_action(status: str):
    anything = st.sampled_from(ACTIONS_TRIED)
    return st.one_of(st.sampled_from(SPEC_NEXT[status]), anything) if SPEC_NEXT[status] else anything


def _resolve(data: dict, incident_id, change_ids: dict) -> dict:
    """Fill in the placeholders that need the database or the clock."""
    now = datetime.now(UTC)
    out = {}
    for key, value in data.items():
        if value == PAST:
            value = (now - timedelta(hours=1)).isoformat()
        elif value == FUTURE:
            value = (now + timedelta(hours=2)).isoformat()
        elif value == FIRST_ENTRY:
            value = str(timeline.entries(incident_id)[0].id)
        elif value in (APPROVED, PENDING):
            value = str(change_ids[value])
        out[key] = value
    return out


def _row(incident_id) -> dict:
    table = Incident.__table__
    return dict(db.session.execute(select(table).where(table.c.id == incident_id)).mappings().one())


def _counts(workspace_id: int, incident_id) -> tuple[int, int, int]:
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == workspace_id)),
        db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.ref_type == "incident",
                                                                              AuditEvent.ref_id == str(incident_id))),
        db.session.scalar(select(func.count()).select_from(TimelineEntry)
                          .where(TimelineEntry.workspace_id == workspace_id)),
    )


def _run(world, incident_id, action: str, role: str, data: dict) -> None:
    if action == "review":
        manager = world.actor("service_desk_manager")
        reviews.save_review(actor=manager, incident_id=incident_id,
                            summary="What happened, why, and what we changed afterwards.")
        reviews.sign_off(actor=manager, incident_id=incident_id)
    else:
        service.perform(actor=world.actor(role), incident_id=incident_id, action=action, data=data)


# no example database (nothing written into the repository) and no shrinking: every step is a few
# database transactions, shrinking a 25-step walk takes minutes, and the notes already list each step
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(severity=st.sampled_from(["p1", "p2", "p3", "p4"]), reporter=st.sampled_from(REPORTERS),
       length=st.integers(min_value=5, max_value=25), draw=st.data())
def test_random_sop_sequences_stay_on_the_spec_state_machine_and_are_audited(app_ctx, world, severity, reporter,
                                                                             length, draw):
    """Rules (spec §4, §3): statuses stay in the spec's set and move only along its edges by the right SOP;
    a success is audited; a refusal (any DomainError) leaves no trace and the row unchanged."""
    db.session.rollback()
    workspace_id = world.workspace.id
    incident = service.create_incident(actor=world.actor(reporter), data={
        "title": "Checkout is slow", "severity": severity, "tenant": world.tenant_a.slug})
    incident_id = incident.id
    approved = changes.create_change(actor=world.actor("resolver"), tenant=world.tenant_a.slug,
                                     summary="Raise the pool size", risk="low")
    changes.decide(actor=world.actor("change_manager"), change_id=approved.id, approve=True)
    pending = changes.create_change(actor=world.actor("resolver"), tenant=world.tenant_a.slug,
                                    summary="Not yet approved", risk="low")
    change_ids = {APPROVED: approved.id, PENDING: pending.id}
    assert _row(incident_id)["status"] == "open"

    for number in range(1, length + 1):
        before_row = _row(incident_id)
        before = _counts(workspace_id, incident_id)
        action = draw.draw(_next_action(before_row["status"]), label=f"step {number} action")
        role = draw.draw(st.sampled_from(ACTING_ROLES), label=f"step {number} role")
        data = _resolve(draw.draw(FIELDS[action], label=f"step {number} fields"), incident_id, change_ids)
        try:
            _run(world, incident_id, action, role, data)
        except DomainError as refusal:
            db.session.rollback()  # as every caller does
            note(f"step {number}: {action} by {role} with {data} refused: {type(refusal).__name__}: {refusal}")
            assert _counts(workspace_id, incident_id) == before, f"refused {action} left audit/timeline rows"
            assert _row(incident_id) == before_row, f"refused {action} changed the incident"
            continue
        after_row = _row(incident_id)
        after = _counts(workspace_id, incident_id)
        old, new = before_row["status"], after_row["status"]
        note(f"step {number}: {action} by {role} with {data}: {old} -> {new}")
        assert new in SPEC_STATUSES
        if new != old:
            assert (old, new) in SPEC_EDGES, f"{action} moved {old} -> {new}, not an edge of the spec"
            assert SPEC_EDGES[(old, new)] == action, \
                f"{old} -> {new} is made by {SPEC_EDGES[(old, new)]}, not {action}"
        assert after[1] > before[1], f"{action} succeeded without an audit event for the incident"
