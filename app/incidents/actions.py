"""The incident SOPs (spec §4, `003_*`) as actions: who may run each, from which states, what it
changes, and what it writes to the timeline and the audit trail.

`service.perform` runs an action in one transaction: clean the fields, check the role, check the
state (and segregation of duties), apply, audit, commit. Anything refused changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.actors import Actor
from app.audit import service as audit
from app.changes.models import ChangeRequest, IncidentChangeLink
from app.communications import service as communications
from app.errors import InvalidTransition, NotAllowed, ValidationFailed
from app.extensions import db
from app.incidents import sla, timeline
from app.incidents.fields import Field, a_time, a_uuid, one_of, text
from app.incidents.models import Incident, ToolUsage, VendorEngagement
from app.incidents.vocabulary import (
    CATEGORIES,
    CONTACT_METHODS,
    ESCALATION_TARGETS,
    PRIORITIES,
    RECIPIENT_GROUPS,
    SEVERITIES,
    STATUSES,
    TEAMS,
    TOOLS,
)

WORKING = ("open", "investigating", "escalated", "pending_vendor", "mitigated")
NOT_CLOSED = WORKING + ("resolved",)


@dataclass
class Context:
    incident: Incident
    actor: Actor
    values: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str  # "acknowledge", shown in messages: "Cannot acknowledge an incident that is closed."
    capability: str
    from_states: tuple[str, ...]
    fields: tuple[Field, ...]
    apply: Callable[[Context], None]
    api: bool = True  # one of the spec's API actions


def _assignee(value: Any) -> str:
    return text(max_length=255)(value)


def _status(ctx: Context, new_status: str, summary: str | None = None) -> None:
    """Move the state, keeping the SLA clock and the timeline in step."""
    incident, old = ctx.incident, ctx.incident.status
    if old == new_status:
        return
    if old == "pending_vendor":
        sla.resume(incident, ctx.at)
        for engagement in db.session.scalars(select(VendorEngagement).where(
                VendorEngagement.incident_id == incident.id, VendorEngagement.ended_at.is_(None))):
            engagement.ended_at = ctx.at
    if new_status == "pending_vendor":
        sla.pause(incident, ctx.at)
    incident.status = new_status
    body = f"Status: {STATUSES[old]} → {STATUSES[new_status]}."
    if summary:
        body += f"\n\n{summary}"
    timeline.add(incident, event_type="status_change", author=ctx.actor.subject, at=ctx.at, body=body,
                 data={"from": old, "to": new_status})


def _audit(ctx: Context, action: str, before: dict, after: dict, **context: Any) -> None:
    audit.record(actor=ctx.actor, action=action, ref_type="incident", ref_id=ctx.incident.id,
                 tenant_id=ctx.incident.tenant_id, workspace_id=ctx.incident.workspace_id,
                 field_deltas=audit.deltas(before, after), context={"number": ctx.incident.reference, **context},
                 occurred_at=ctx.at)


def _snapshot(incident: Incident, *names: str) -> dict:
    return {name: getattr(incident, name) for name in names}


# -- the actions ------------------------------------------------------------------------------------

def acknowledge(ctx: Context) -> None:
    """SOP 6: take it on (team and assignee), tell the reporter, start investigating. Also how an
    escalation's new owner, or the team after a vendor answers, takes the incident back."""
    incident, values = ctx.incident, ctx.values
    before = _snapshot(incident, "status", "assigned_team", "assignee")
    first = incident.status == "open"
    incident.assigned_team = values["team"] or incident.assigned_team or "service_desk"
    incident.assignee = values["assignee"] or incident.assignee or ctx.actor.subject
    if first:
        incident.acknowledged_at = ctx.at
    _status(ctx, "investigating")
    timeline.add(incident, event_type="assignment", author=ctx.actor.subject, at=ctx.at,
                 body=f"Acknowledged by {ctx.actor.subject}; assigned to {TEAMS[incident.assigned_team]}"
                      f" ({incident.assignee}).", data={"team": incident.assigned_team, "assignee": incident.assignee})
    _audit(ctx, "update", before, _snapshot(incident, "status", "assigned_team", "assignee"))
    if first:
        subject, message = communications.compose("acknowledgement", incident)
        communications.record(actor=ctx.actor, incident=incident, recipients="end_users", template="acknowledgement",
                               subject=subject, message=message, at=ctx.at)


def assign(ctx: Context) -> None:
    incident = ctx.incident
    before = _snapshot(incident, "assigned_team", "assignee")
    incident.assigned_team = ctx.values["team"]
    incident.assignee = ctx.values["assignee"]
    timeline.add(incident, event_type="assignment", author=ctx.actor.subject, at=ctx.at,
                 body=f"Assigned to {TEAMS[incident.assigned_team]}"
                      + (f" ({incident.assignee})." if incident.assignee else "."),
                 data={"team": incident.assigned_team, "assignee": incident.assignee})
    _audit(ctx, "update", before, _snapshot(incident, "assigned_team", "assignee"))


def categorize(ctx: Context) -> None:
    incident = ctx.incident
    before = _snapshot(incident, "category", "subcategory")
    incident.category, incident.subcategory = ctx.values["category"], ctx.values["subcategory"]
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at,
                 body=f"Categorised as {CATEGORIES[incident.category]}"
                      + (f" / {incident.subcategory}." if incident.subcategory else "."))
    _audit(ctx, "update", before, _snapshot(incident, "category", "subcategory"), field="category")


def prioritize(ctx: Context) -> None:
    """SOP 5: set the priority (and, when the impact changed, the severity) with a justification.
    A new severity recomputes the SLA due times from the workspace policy."""
    incident, values = ctx.incident, ctx.values
    before = _snapshot(incident, "priority", "severity", "acknowledge_due_at", "resolve_due_at")
    policy = sla.policy_for(incident.workspace_id)
    if values.get("severity") and values["severity"] != incident.severity:
        incident.severity = values["severity"]
        sla.set_due_times(incident, policy[incident.severity])
        sla.recheck_breaches(incident, ctx.at)
    incident.priority = values["priority"]
    incident.priority_overridden = incident.priority != policy[incident.severity].default_priority
    incident.priority_justification = values["justification"]
    after = _snapshot(incident, "priority", "severity", "acknowledge_due_at", "resolve_due_at")
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at,
                 body=f"Priority {PRIORITIES[incident.priority].lower()}, severity {SEVERITIES[incident.severity]}: "
                      f"{values['justification']}")
    _audit(ctx, "update", before, after, field="priority", justification=values["justification"])


def diagnose(ctx: Context) -> None:
    incident, values = ctx.incident, ctx.values
    before = _snapshot(incident, "workaround_available", "workaround")
    if values["workaround"]:
        incident.workaround_available, incident.workaround = True, values["workaround"]
    body = f"Diagnosis: {values['steps']}"
    if values["workaround"]:
        body += f"\n\nWorkaround: {values['workaround']}"
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at, body=body,
                 data={"diagnosis": True, "workaround": bool(values["workaround"])})
    _audit(ctx, "update", before, _snapshot(incident, "workaround_available", "workaround"), field="diagnosis")


def escalate(ctx: Context) -> None:
    incident, values = ctx.incident, ctx.values
    before = _snapshot(incident, "status", "assigned_team")
    incident.assigned_team = values["team"]
    _status(ctx, "escalated")
    timeline.add(incident, event_type="escalation", author=ctx.actor.subject, at=ctx.at,
                 body=f"Escalated to {TEAMS[values['team']]}: {values['reason']}",
                 data={"team": values["team"], "reason": values["reason"]})
    _audit(ctx, "escalate", before, _snapshot(incident, "status", "assigned_team"), reason=values["reason"])
    communications.record(actor=ctx.actor, incident=incident, recipients="IT_staff", template="status_update",
                          subject=f"[{incident.reference}] Escalated to {TEAMS[values['team']]}: {incident.title}"[:300],
                          message=f"{incident.reference} was escalated to {TEAMS[values['team']]}: {values['reason']}",
                          at=ctx.at)


def engage_vendor(ctx: Context) -> None:
    incident, values = ctx.incident, ctx.values
    before = _snapshot(incident, "status")
    engagement = VendorEngagement(incident_id=incident.id, workspace_id=incident.workspace_id,
                                  tenant_id=incident.tenant_id, vendor=values["vendor"],
                                  contact_method=values["contact_method"], reference=values["reference"],
                                  engaged_by=ctx.actor.subject, engaged_at=ctx.at)
    db.session.add(engagement)
    _status(ctx, "pending_vendor")
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at,
                 body=f"Vendor {values['vendor']} engaged by {CONTACT_METHODS[values['contact_method']].lower()}"
                      + (f" (reference {values['reference']})." if values["reference"] else ".")
                      + " The resolution clock is paused while we wait.",
                 data={"vendor": values["vendor"], "contact_method": values["contact_method"]})
    _audit(ctx, "vendor_engagement", before, _snapshot(incident, "status"), vendor=values["vendor"],
           contact_method=values["contact_method"])


def link_change(ctx: Context) -> None:
    """SOP 10: only an approved change of the same tenant can be linked."""
    incident = ctx.incident
    change = db.session.scalar(select(ChangeRequest).where(ChangeRequest.id == ctx.values["change_id"],
                                                           ChangeRequest.workspace_id == incident.workspace_id,
                                                           ChangeRequest.tenant_id == incident.tenant_id))
    if change is None:
        raise ValidationFailed("No such change request for this tenant.", fields={"change_id": "unknown change"})
    if change.approval_status != "approved":
        raise ValidationFailed(f"{change.reference} is {change.approval_status}; only approved changes can be linked.",
                               fields={"change_id": "not approved"})
    exists = db.session.get(IncidentChangeLink, (incident.id, change.id))
    if exists is not None:
        raise ValidationFailed(f"{change.reference} is already linked.", fields={"change_id": "already linked"})
    db.session.add(IncidentChangeLink(incident_id=incident.id, change_request_id=change.id,
                                      workspace_id=incident.workspace_id, tenant_id=incident.tenant_id,
                                      linked_by=ctx.actor.subject, linked_at=ctx.at))
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at,
                 body=f"Linked approved change {change.reference}: {change.summary}",
                 data={"change_id": str(change.id)})
    _audit(ctx, "update", {"change_link": None}, {"change_link": change.reference}, field="change_link")


def mitigate(ctx: Context) -> None:
    incident = ctx.incident
    before = _snapshot(incident, "status")
    incident.mitigated_at = ctx.at
    _status(ctx, "mitigated", ctx.values["summary"])
    _audit(ctx, "update", before, _snapshot(incident, "status"), summary=ctx.values["summary"])


def resolve(ctx: Context) -> None:
    incident = ctx.incident
    before = _snapshot(incident, "status", "resolution_summary")
    incident.resolved_at = ctx.at
    incident.resolution_summary = ctx.values["summary"]
    _status(ctx, "resolved", ctx.values["summary"])
    _audit(ctx, "resolve", before, _snapshot(incident, "status", "resolution_summary"))


def communicate(ctx: Context) -> None:
    values = ctx.values
    communications.record(actor=ctx.actor, incident=ctx.incident, recipients=values["recipients"],
                          message=values["message"], template=values.get("template") or "custom",
                          subject=values.get("subject"), at=ctx.at)


def close(ctx: Context) -> None:
    """SOP 13: only resolved incidents; a high-priority one needs a signed-off review and an incident
    or service desk manager who did not report it."""
    from app.reviews.service import review_of

    incident, actor = ctx.incident, ctx.actor
    if incident.priority == "high":
        if not actor.can("incidents.close_high_priority"):
            raise NotAllowed("A high-priority incident is closed by an incident manager or service desk manager.")
        if actor.kind == "user" and incident.reporter_id == actor.id:
            raise NotAllowed("Segregation of duties: you reported this incident, so someone else must close it.")
        review = review_of(incident.id)
        if review is None or review.status != "signed_off":
            raise InvalidTransition("A high-priority incident needs a signed-off post-incident review before "
                                    "it can be closed.")
    before = _snapshot(incident, "status", "closure_notes")
    incident.closed_at, incident.closure_notes = ctx.at, ctx.values["notes"]
    _status(ctx, "closed", ctx.values["notes"])
    _audit(ctx, "close", before, _snapshot(incident, "status", "closure_notes"))


def reopen(ctx: Context) -> None:
    incident = ctx.incident
    before = _snapshot(incident, "status", "resolved_at")
    incident.resolved_at = None
    incident.reopened_count += 1
    _status(ctx, "investigating", f"Reopened: {ctx.values['reason']}")
    _audit(ctx, "update", before, _snapshot(incident, "status", "resolved_at"), reason=ctx.values["reason"])


def log_details(ctx: Context) -> None:
    """SOP 3: description, affected service, and the first diagnosis or workaround note."""
    incident, values = ctx.incident, ctx.values
    before = _snapshot(incident, "description", "affected_service")
    if values["description"] is not None:
        incident.description = values["description"]
    if values["affected_service"] is not None:
        incident.affected_service = values["affected_service"]
    after = _snapshot(incident, "description", "affected_service")
    if before == after and not values["note"]:
        raise ValidationFailed("Nothing to log: change the description, the service or add a note.")
    changed = [label for name, label in (("description", "description"), ("affected_service", "affected service"))
               if before[name] != after[name]]
    body = values["note"] or ""
    if changed:
        body = (f"Logged: {' and '.join(changed)} updated." + (f"\n\n{body}" if body else ""))
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at, body=body,
                 data={"logged": changed})
    _audit(ctx, "create", before, after, field="log")


def add_note(ctx: Context) -> None:
    """A timeline note, possibly retroactive, possibly correcting an earlier entry."""
    incident, values = ctx.incident, ctx.values
    occurred_at = timeline.check_occurred_at(values["occurred_at"]) if values.get("occurred_at") else ctx.at
    corrects = timeline.entry_of(incident, values["corrects"]) if values.get("corrects") else None
    entry = timeline.add(incident, event_type="note", author=ctx.actor.subject, at=occurred_at, body=values["body"],
                         corrects=corrects, data={"retroactive": occurred_at < ctx.at} if occurred_at < ctx.at else {})
    db.session.flush()
    _audit(ctx, "update", {}, {"timeline": "note added"}, entry_id=entry.id,
           corrects=str(corrects.id) if corrects else None, occurred_at=occurred_at)


def record_tool_use(ctx: Context) -> None:
    """SOP 17: a tool action and its outcome, recorded (nothing is executed from here)."""
    incident, values = ctx.incident, ctx.values
    db.session.add(ToolUsage(incident_id=incident.id, workspace_id=incident.workspace_id, tenant_id=incident.tenant_id,
                             tool=values["tool"], action_summary=values["action_summary"], outcome=values["outcome"],
                             executor=ctx.actor.subject, created_at=ctx.at))
    timeline.add(incident, event_type="note", author=ctx.actor.subject, at=ctx.at,
                 body=f"{TOOLS[values['tool']]}: {values['action_summary']} — outcome: {values['outcome']}",
                 data={"tool": values["tool"]})
    audit.record(actor=ctx.actor, action="tool_use", ref_type="incident", ref_id=incident.id,
                 tenant_id=incident.tenant_id, workspace_id=incident.workspace_id,
                 context={"tool": values["tool"], "outcome": values["outcome"][:200]}, occurred_at=ctx.at)


TEAM = one_of(TEAMS)
ACTIONS: dict[str, ActionSpec] = {spec.name: spec for spec in (
    ActionSpec("acknowledge", "acknowledge", "incidents.work", ("open", "escalated", "pending_vendor", "mitigated"),
               (Field("team", False, TEAM), Field("assignee", False, _assignee)), acknowledge),
    ActionSpec("assign", "assign", "incidents.work", WORKING,
               (Field("team", True, TEAM), Field("assignee", False, _assignee)), assign),
    ActionSpec("categorize", "categorise", "incidents.work", NOT_CLOSED,
               (Field("category", True, one_of(CATEGORIES)), Field("subcategory", False, text(max_length=100))),
               categorize),
    ActionSpec("prioritize", "prioritise", "incidents.work", NOT_CLOSED,
               (Field("priority", True, one_of(PRIORITIES)), Field("justification", True, text(min_length=10,
                                                                                                  max_length=2000)),
                Field("severity", False, one_of(SEVERITIES))), prioritize),
    ActionSpec("diagnose", "record a diagnosis for", "incidents.work", WORKING,
               (Field("steps", True, text(max_length=10_000)), Field("workaround", False, text(max_length=10_000))),
               diagnose),
    ActionSpec("escalate", "escalate", "incidents.work", ("investigating", "escalated"),
               (Field("team", True, one_of(ESCALATION_TARGETS)), Field("reason", True, text(max_length=2000))),
               escalate),
    ActionSpec("engage_vendor", "engage a vendor for", "incidents.work", ("investigating", "pending_vendor"),
               (Field("vendor", True, text(max_length=200)), Field("contact_method", True, one_of(CONTACT_METHODS)),
                Field("reference", False, text(max_length=200))), engage_vendor),
    ActionSpec("link_change", "link a change to", "incidents.link_change", NOT_CLOSED,
               (Field("change_id", True, a_uuid),), link_change),
    ActionSpec("mitigate", "mitigate", "incidents.work", ("investigating", "escalated", "pending_vendor"),
               (Field("summary", True, text(max_length=5000)),), mitigate),
    ActionSpec("resolve", "resolve", "incidents.work", ("investigating", "escalated", "pending_vendor", "mitigated"),
               (Field("summary", True, text(max_length=5000)),), resolve),
    ActionSpec("communicate", "send a communication about", "incidents.communicate", NOT_CLOSED + ("closed",),
               (Field("recipients", True, one_of(RECIPIENT_GROUPS)), Field("message", True, text(max_length=10_000)),
                Field("template", False, one_of(("acknowledgement", "status_update", "resolution", "custom"))),
                Field("subject", False, text(max_length=300))), communicate),
    ActionSpec("close", "close", "incidents.work", ("resolved",), (Field("notes", True, text(max_length=5000)),),
               close),
    ActionSpec("reopen", "reopen", "incidents.work", ("resolved",), (Field("reason", True, text(max_length=2000)),),
               reopen),
    ActionSpec("log", "log details of", "incidents.work", NOT_CLOSED,
               (Field("description", False, text(min_length=0, max_length=50_000)),
                Field("affected_service", False, text(max_length=200)), Field("note", False, text(max_length=10_000))),
               log_details, api=False),
    ActionSpec("note", "add a note to", "incidents.work", NOT_CLOSED + ("closed",),
               (Field("body", True, text(max_length=20_000)), Field("occurred_at", False, a_time),
                Field("corrects", False, a_uuid)), add_note, api=False),
    ActionSpec("tool_use", "record a tool action on", "incidents.work", NOT_CLOSED,
               (Field("tool", True, one_of(TOOLS)), Field("action_summary", True, text(max_length=2000)),
                Field("outcome", True, text(max_length=2000))), record_tool_use, api=False),
)}
API_ACTIONS = tuple(name for name, spec in ACTIONS.items() if spec.api)


def allowed_actions(incident: Incident, actor: Actor) -> list[str]:
    """The actions this actor could try on this incident now (what the detail page offers)."""
    return [name for name, spec in ACTIONS.items()
            if incident.status in spec.from_states and actor.can(spec.capability)]


def check_state(spec: ActionSpec, incident: Incident) -> None:
    if incident.status not in spec.from_states:
        allowed = ", ".join(STATUSES[s].lower() for s in spec.from_states)
        raise InvalidTransition(f"Cannot {spec.label} an incident that is {STATUSES[incident.status].lower()} "
                                f"(only when {allowed}).")
