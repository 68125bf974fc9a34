"""Delivering communications (e-mail, webhook), and sweeping up deliveries that never got queued."""

from __future__ import annotations

from sqlalchemy import text

from app.communications import service
from app.extensions import db
from jobs.context import final_attempt, with_app_context
from jobs.schedule import periodic


@with_app_context
def deliver_communication(communication_id: str) -> str:
    return service.deliver(communication_id, final_attempt=final_attempt())


@with_app_context
@periodic(name="requeue-communications", every_seconds=300, queue="notifications")
def requeue_stalled() -> int:
    """Queue again what has waited more than ten minutes without a delivery attempt."""
    ids = db.session.scalars(text("""
        SELECT id FROM communications
        WHERE delivery_status = 'queued' AND attempts = 0 AND created_at < now() - interval '10 minutes'
        ORDER BY created_at LIMIT 500
    """)).all()
    db.session.rollback()
    for communication_id in ids:
        service.queue_delivery(communication_id)
    return len(ids)
