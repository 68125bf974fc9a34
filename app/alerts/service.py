"""Raising in-app alerts (once per dedupe key) and reading them as a member of a role."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from app.actors import Actor
from app.alerts.models import Alert, AlertRead
from app.errors import NotFound
from app.extensions import db


def raise_alert(*, workspace_id: int, tenant_id: int | None, audience_role: str, kind: str, message: str,
                link: str | None = None, data: dict | None = None, dedupe_key: str | None = None) -> int | None:
    """Add an alert in the caller's transaction; a repeated dedupe key adds nothing. Returns its id."""
    statement = insert(Alert).values(workspace_id=workspace_id, tenant_id=tenant_id, audience_role=audience_role,
                                     kind=kind, message=message[:1000], link=link, data=data or {},
                                     dedupe_key=dedupe_key)
    if dedupe_key:
        statement = statement.on_conflict_do_nothing(index_elements=["dedupe_key"])
    return db.session.scalar(statement.returning(Alert.id))


@dataclass
class AlertView:
    alert: Alert
    read: bool


def _mine(actor: Actor):
    return select(Alert).where(Alert.workspace_id == actor.workspace_id, Alert.audience_role == actor.role)


def unread_count(*, actor: Actor) -> int:
    if actor.kind != "user" or actor.role is None:
        return 0
    return db.session.scalar(select(func.count()).select_from(
        _mine(actor).where(~select(AlertRead.alert_id).where(AlertRead.alert_id == Alert.id,
                                                              AlertRead.user_id == actor.id).exists()).subquery()))


def list_alerts(*, actor: Actor, before: int | None = None, limit: int = 50) -> tuple[list[AlertView], int | None]:
    """The alerts for the actor's role (and tenants), newest first, with read marks; keyset on id."""
    query = _mine(actor)
    if before is not None:
        query = query.where(Alert.id < before)
    rows = list(db.session.scalars(query.order_by(Alert.id.desc()).limit(limit + 1)))
    ids = [a.id for a in rows[:limit]]
    read = set(db.session.scalars(select(AlertRead.alert_id).where(AlertRead.user_id == actor.id,
                                                                   AlertRead.alert_id.in_(ids)))) if ids else set()
    views = [AlertView(alert=a, read=a.id in read) for a in rows[:limit]]
    return views, (rows[limit - 1].id if len(rows) > limit else None)


def mark_read(*, actor: Actor, alert_id: int | None = None) -> int:
    """Mark one alert (or all of the actor's) as read; returns how many were newly marked."""
    if alert_id is not None:
        alert = db.session.scalar(_mine(actor).where(Alert.id == alert_id))
        if alert is None:
            raise NotFound("No such alert.")
    result = db.session.execute(text("""
        INSERT INTO alert_reads (alert_id, user_id)
        SELECT a.id, :user_id FROM alerts a
        WHERE a.workspace_id = :ws AND a.audience_role = :role
          AND (CAST(:alert_id AS bigint) IS NULL OR a.id = CAST(:alert_id AS bigint))
          AND (CAST(:tenants AS integer[]) IS NULL OR a.tenant_id = ANY(CAST(:tenants AS integer[])))
        ON CONFLICT DO NOTHING
    """), {"user_id": actor.id, "ws": actor.workspace_id, "role": actor.role, "alert_id": alert_id,
           "tenants": list(actor.tenant_ids) if actor.tenant_ids is not None else None})
    db.session.commit()
    return result.rowcount
