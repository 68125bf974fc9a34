"""Delivering alerts (in-app, e-mail, webhook), and sweeping up deliveries that never got queued."""

from __future__ import annotations

from sqlalchemy import text

from app.alerting import service
from app.extensions import db
from jobs.context import final_attempt, with_app_context
from jobs.schedule import periodic


@with_app_context
def deliver_alert(delivery_id: int) -> str:
    return service.deliver(delivery_id, final_attempt=final_attempt())


@with_app_context
@periodic(name="requeue-alert-deliveries", every_seconds=300, queue="notifications")
def requeue_stalled_alerts() -> int:
    """Queue again what has waited more than ten minutes without a delivery attempt."""
    ids = db.session.scalars(text("""
        SELECT id FROM alert_deliveries
        WHERE status = 'queued' AND attempts = 0 AND created_at < now() - interval '10 minutes'
        ORDER BY id LIMIT 500
    """)).all()
    db.session.rollback()
    return service.queue_deliveries(list(ids))
