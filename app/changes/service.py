"""Change requests: raise, approve or reject (never by the requester), and find approved ones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from app.actors import Actor
from app.audit import service as audit
from app.changes.models import RISKS, ChangeRequest
from app.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from app.extensions import db
from app.workspaces.service import next_reference_number, tenant_for


def create_change(*, actor: Actor, tenant: str | int, summary: str, risk: str, description: str = "",
                  rollback_plan: str = "") -> ChangeRequest:
    if not actor.can("changes.create"):
        raise NotAllowed("Your role cannot raise change requests.")
    summary = (summary or "").strip()
    problems = {}
    if not summary or len(summary) > 500:
        problems["summary"] = "between 1 and 500 characters"
    if risk not in RISKS:
        problems["risk"] = "low, medium or high"
    target = tenant_for(actor=actor, tenant=tenant, problems=problems)
    if problems:
        raise ValidationFailed("The change request could not be raised.", fields=problems)
    change = ChangeRequest(workspace_id=actor.workspace_id, tenant_id=target.id,
                           number=next_reference_number(workspace_id=actor.workspace_id, kind="change", start=0),
                           summary=summary, description=(description or "").strip(), risk=risk,
                           rollback_plan=(rollback_plan or "").strip(), requester_id=actor.id if actor.kind == "user"
                           else None, requester=actor.subject)
    db.session.add(change)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="change_request", ref_id=change.id, tenant_id=target.id,
                 field_deltas={"summary": [None, summary], "risk": [None, risk]})
    db.session.commit()
    return change


def get_change(*, actor: Actor, change_id) -> ChangeRequest:
    try:
        wanted = uuid.UUID(str(change_id))
    except ValueError:
        raise NotFound("No such change request.") from None
    change = db.session.scalar(select(ChangeRequest).where(ChangeRequest.id == wanted,
                                                           ChangeRequest.workspace_id == actor.workspace_id))
    if change is None:
        raise NotFound("No such change request.")
    return change


def decide(*, actor: Actor, change_id, approve: bool, note: str = "") -> ChangeRequest:
    """Approve or reject a pending change; the requester can never approve their own."""
    change = get_change(actor=actor, change_id=change_id)
    if not actor.can("changes.approve"):
        raise NotAllowed("Only change managers approve or reject changes.")
    if actor.kind == "user" and change.requester_id == actor.id:
        raise NotAllowed("Segregation of duties: you requested this change, so someone else must approve it.")
    if change.approval_status != "pending":
        raise InvalidTransition(f"{change.reference} is already {change.approval_status}.")
    change.approval_status = "approved" if approve else "rejected"
    change.approver_id, change.approver = (actor.id if actor.kind == "user" else None), actor.subject
    change.decided_at, change.decision_note = db.func.now(), (note or "").strip() or None
    audit.record(actor=actor, action="approve" if approve else "reject", ref_type="change_request", ref_id=change.id,
                 tenant_id=change.tenant_id, field_deltas={"approval_status": ["pending", change.approval_status]},
                 context={"note": change.decision_note} if change.decision_note else None)
    db.session.commit()
    return change


@dataclass
class ChangePage:
    changes: list[ChangeRequest]
    older_cursor: int | None


def list_changes(*, actor: Actor, approval: str | None = None, before: int | None = None,
                 limit: int = 50) -> ChangePage:
    query = select(ChangeRequest).where(ChangeRequest.workspace_id == actor.workspace_id)
    if approval:
        query = query.where(ChangeRequest.approval_status == approval)
    if before is not None:
        query = query.where(ChangeRequest.number < before)
    rows = list(db.session.scalars(query.order_by(ChangeRequest.number.desc()).limit(limit + 1)))
    return ChangePage(changes=rows[:limit], older_cursor=rows[limit - 1].number if len(rows) > limit else None)


def approved_for_tenant(*, actor: Actor, tenant_id: int) -> list[ChangeRequest]:
    return list(db.session.scalars(select(ChangeRequest).where(
        ChangeRequest.workspace_id == actor.workspace_id, ChangeRequest.tenant_id == tenant_id,
        ChangeRequest.approval_status == "approved").order_by(ChangeRequest.number.desc()).limit(100)))
