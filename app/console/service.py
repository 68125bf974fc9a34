"""What the start page shows: the workspace at a glance, within the caller's scope."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.actors import Actor
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.extensions import db
from app.workspaces.models import Membership, Tenant


@dataclass
class Overview:
    tenants: list[Tenant]
    member_count: int
    recent_events: list  # audit rows
    events_today: int


def overview(*, actor: Actor) -> Overview:
    tenants = db.session.scalars(select(Tenant).where(Tenant.workspace_id == actor.workspace_id)
                                 .order_by(Tenant.name)).all()
    member_count = db.session.scalar(select(func.count()).select_from(Membership)
                                     .where(Membership.workspace_id == actor.workspace_id))
    recent: list = []
    today = 0
    if actor.can("audit.view"):
        recent = audit.list_events(actor=actor, filters=audit.AuditFilters(), limit=8).events
        today = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.workspace_id == actor.workspace_id,
            AuditEvent.occurred_at >= func.date_trunc("day", func.now())))
    return Overview(tenants=list(tenants), member_count=member_count, recent_events=recent, events_today=today)
