"""Post-incident reviews: write, sign off (audited as `review`), track action items."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from app.actors import Actor
from app.audit import service as audit
from app.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from app.extensions import db
from app.incidents.models import Incident
from app.reviews.models import ACTION_STATES, PirActionItem, PostIncidentReview

REVIEWABLE_STATES = ("mitigated", "resolved", "closed")


def review_of(incident_id) -> PostIncidentReview | None:
    return db.session.scalar(select(PostIncidentReview).where(PostIncidentReview.incident_id == incident_id))


def action_items(review_id) -> list[PirActionItem]:
    return list(db.session.scalars(select(PirActionItem).where(PirActionItem.review_id == review_id)
                                   .order_by(PirActionItem.due_date, PirActionItem.created_at)))


def _incident(actor: Actor, incident_id) -> Incident:
    from app.incidents.service import get_incident

    return get_incident(actor=actor, incident_id=incident_id)


def save_review(*, actor: Actor, incident_id, summary: str, contributing_factors: str = "",
                lessons: str = "") -> PostIncidentReview:
    """Write or revise the PIR of an incident (mitigated, resolved or closed). Revising a signed-off
    review reopens it for sign-off."""
    incident = _incident(actor, incident_id)
    if not actor.can("reviews.write"):
        raise NotAllowed("Only incident managers and service desk managers write post-incident reviews.")
    if incident.status not in REVIEWABLE_STATES:
        raise InvalidTransition("A review is written once the incident is mitigated or resolved.")
    summary = (summary or "").strip()
    if len(summary) < 20:
        raise ValidationFailed("Summarise what happened in at least 20 characters.", fields={"summary": "too short"})
    review = review_of(incident.id)
    before = {}
    if review is None:
        review = PostIncidentReview(incident_id=incident.id, workspace_id=incident.workspace_id,
                                    tenant_id=incident.tenant_id, summary=summary, author=actor.subject)
        db.session.add(review)
    else:
        before = {"summary": review.summary, "contributing_factors": review.contributing_factors,
                  "lessons": review.lessons, "status": review.status}
    review.summary, review.contributing_factors = summary, (contributing_factors or "").strip()
    review.lessons = (lessons or "").strip()
    review.status, review.reviewer_id, review.reviewer, review.signed_off_at = "draft", None, None, None
    review.updated_at = db.func.now()
    db.session.flush()
    after = {"summary": review.summary, "contributing_factors": review.contributing_factors,
             "lessons": review.lessons, "status": review.status}
    audit.record(actor=actor, action="review", ref_type="incident", ref_id=incident.id, tenant_id=incident.tenant_id,
                 field_deltas={k: [before.get(k), v] for k, v in after.items() if before.get(k) != v},
                 context={"review_id": review.id, "event": "written" if not before else "revised"})
    db.session.commit()
    return review


def sign_off(*, actor: Actor, incident_id) -> PostIncidentReview:
    incident = _incident(actor, incident_id)
    if not actor.can("reviews.write"):
        raise NotAllowed("Only incident managers and service desk managers sign off reviews.")
    review = review_of(incident.id)
    if review is None:
        raise InvalidTransition("There is no review to sign off yet.")
    if review.status == "signed_off":
        raise InvalidTransition("The review is already signed off.")
    review.status, review.reviewer, review.signed_off_at = "signed_off", actor.subject, db.func.now()
    review.reviewer_id = actor.id if actor.kind == "user" else None
    audit.record(actor=actor, action="review", ref_type="incident", ref_id=incident.id, tenant_id=incident.tenant_id,
                 field_deltas={"status": ["draft", "signed_off"]}, context={"review_id": review.id, "event": "signed_off"})
    db.session.commit()
    return review


def add_action_item(*, actor: Actor, incident_id, description: str, owner: str, due_date: date | None) -> PirActionItem:
    incident = _incident(actor, incident_id)
    if not actor.can("reviews.write"):
        raise NotAllowed("Only incident managers and service desk managers add action items.")
    review = review_of(incident.id)
    if review is None:
        raise InvalidTransition("Write the review before adding action items.")
    problems = {}
    description, owner = (description or "").strip(), (owner or "").strip()
    if not description:
        problems["description"] = "required"
    if not owner:
        problems["owner"] = "required"
    if due_date is None:
        problems["due_date"] = "a date"
    if problems:
        raise ValidationFailed("The action item is incomplete.", fields=problems)
    item = PirActionItem(review_id=review.id, incident_id=incident.id, workspace_id=incident.workspace_id,
                         tenant_id=incident.tenant_id, description=description[:2000], owner=owner[:255],
                         due_date=due_date)
    db.session.add(item)
    db.session.flush()
    audit.record(actor=actor, action="review", ref_type="incident", ref_id=incident.id, tenant_id=incident.tenant_id,
                 field_deltas={"action_item": [None, description[:200]], "owner": [None, owner],
                               "due_date": [None, due_date.isoformat()]},
                 context={"review_id": review.id, "action_item_id": item.id})
    db.session.commit()
    return item


def set_action_item_status(*, actor: Actor, item_id, status: str) -> PirActionItem:
    try:
        wanted = uuid.UUID(str(item_id))
    except ValueError:
        raise NotFound("No such action item.") from None
    item = db.session.scalar(select(PirActionItem).where(PirActionItem.id == wanted,
                                                         PirActionItem.workspace_id == actor.workspace_id))
    if item is None:
        raise NotFound("No such action item.")
    if not (actor.can("reviews.write") or item.owner == actor.subject):
        raise NotAllowed("Only the owner or a manager updates an action item.")
    if status not in ACTION_STATES:
        raise ValidationFailed("Unknown status.", fields={"status": "open, in_progress or done"})
    if item.status == status:
        return item
    audit.record(actor=actor, action="update", ref_type="incident", ref_id=item.incident_id, tenant_id=item.tenant_id,
                 field_deltas={"action_item_status": [item.status, status]}, context={"action_item_id": item.id})
    item.status = status
    item.completed_at = db.func.now() if status == "done" else None
    db.session.commit()
    return item


@dataclass
class ReviewsPage:
    reviews: list[tuple[PostIncidentReview, Incident]]
    items: list[tuple[PirActionItem, Incident]]


def overview(*, actor: Actor, review_status: str | None = None, owner: str | None = None,
             overdue_only: bool = False, limit: int = 50) -> ReviewsPage:
    """PIRs and the open action items across incidents, for managers (the Reviews page)."""
    if not actor.can("reviews.view"):
        raise NotAllowed("Your role does not include reviews.")
    reviews = select(PostIncidentReview, Incident).join(Incident, Incident.id == PostIncidentReview.incident_id) \
        .where(PostIncidentReview.workspace_id == actor.workspace_id)
    if review_status:
        reviews = reviews.where(PostIncidentReview.status == review_status)
    items = select(PirActionItem, Incident).join(Incident, Incident.id == PirActionItem.incident_id) \
        .where(PirActionItem.workspace_id == actor.workspace_id, PirActionItem.status != "done")
    if owner:
        items = items.where(PirActionItem.owner == owner)
    if overdue_only:
        items = items.where(PirActionItem.due_date < db.func.current_date())
    return ReviewsPage(
        reviews=[tuple(r) for r in db.session.execute(reviews.order_by(PostIncidentReview.updated_at.desc())
                                                        .limit(limit))],
        items=[tuple(r) for r in db.session.execute(items.order_by(PirActionItem.due_date).limit(limit))])
