"""Recording communications on an incident and delivering them to the group's channel.

A communication is recorded in the same transaction as the action that sends it (with its
timeline entry and `notify` audit event); delivery is an RQ job enqueued after the commit, retried
with back-off, its state kept on the row for the incident page and /system to show.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import select

from app.actors import Actor
from app.audit import service as audit
from app.communications.models import CHANNEL_KINDS, Communication, CommunicationChannel
from app.delivery import DeliveryError, post_signed_json, send_email, webhook_signature
from app.errors import NotAllowed, ValidationFailed
from app.extensions import db
from app.incidents.vocabulary import PRIORITIES, RECIPIENT_GROUPS, STATUSES, TEAMS
from app.transactions import after_commit

log = logging.getLogger(__name__)

MAX_MESSAGE = 10_000
TEMPLATE_TEXT = {
    "acknowledgement": (
        "[{ref}] We are on it: {title}",
        "We have received {ref} ({title}). The {team} team is investigating it at {priority} priority "
        "and will keep you updated.",
    ),
    "status_update": (
        "[{ref}] Update: {title}",
        "{ref} is now {status}. {details}",
    ),
    "resolution": (
        "[{ref}] Resolved: {title}",
        "{ref} has been resolved. {details}",
    ),
}


def compose(template: str, incident, details: str = "") -> tuple[str, str]:
    """Subject and message of a template filled in for this incident."""
    subject, body = TEMPLATE_TEXT[template]
    values = {"ref": incident.reference, "title": incident.title, "status": STATUSES[incident.status].lower(),
              "team": TEAMS.get(incident.assigned_team or "service_desk", "service desk"),
              "priority": PRIORITIES[incident.priority].lower(),
              "details": details or (incident.resolution_summary or "")}
    return subject.format(**values)[:300], body.format(**values).strip()


def record(*, actor: Actor, incident, recipients: str, message: str, template: str = "custom",
           subject: str | None = None, at: datetime | None = None) -> Communication:
    """Record a communication in the caller's transaction and queue its delivery for after commit."""
    from app.incidents import timeline

    if recipients not in RECIPIENT_GROUPS:
        raise ValidationFailed("Choose who receives the message.", fields={"recipients": "unknown recipient group"})
    message = (message or "").strip()
    if not message:
        raise ValidationFailed("Write the message.", fields={"message": "required"})
    if len(message) > MAX_MESSAGE:
        raise ValidationFailed("The message is too long.", fields={"message": f"at most {MAX_MESSAGE} characters"})
    channel = db.session.scalar(select(CommunicationChannel).where(
        CommunicationChannel.workspace_id == incident.workspace_id, CommunicationChannel.recipients == recipients))
    communication = Communication(
        incident_id=incident.id, workspace_id=incident.workspace_id, tenant_id=incident.tenant_id,
        recipients=recipients, template=template, message=message, sender=actor.subject,
        subject=(subject or f"[{incident.reference}] {incident.title}")[:300],
        channel_kind=channel.kind if channel else None, delivery_status="queued" if channel else "recorded")
    if at is not None:
        communication.created_at = at
    db.session.add(communication)
    db.session.flush()
    timeline.add(incident, event_type="communication", author=actor.subject, at=at,
                 body=f"To {RECIPIENT_GROUPS[recipients]}: {message}",
                 data={"communication_id": str(communication.id), "recipients": recipients, "template": template})
    audit.record(actor=actor, action="notify", ref_type="incident", ref_id=incident.id, tenant_id=incident.tenant_id,
                 workspace_id=incident.workspace_id,
                 context={"recipients": recipients, "template": template, "communication_id": communication.id},
                 occurred_at=at)
    if channel is not None:
        after_commit(db.session, lambda cid=communication.id: queue_delivery(cid))
    return communication


def queue_delivery(communication_id) -> None:
    """Enqueue the delivery job; if Redis is down the row stays queued and the sweeper retries."""
    from rq import Retry

    from jobs.communications import deliver_communication
    from jobs.queues import enqueue

    try:
        enqueue("notifications", deliver_communication, str(communication_id),
                retry=Retry(max=4, interval=[10, 60, 300, 900]))
    except Exception:  # the sweeper (jobs.communications.requeue_stalled) picks it up later
        log.warning("could not enqueue delivery of communication %s", communication_id, exc_info=True)


__all__ = ["DeliveryError", "webhook_signature"]  # re-exported: they lived here before app.delivery


def deliver(communication_id, *, final_attempt: bool) -> str:
    """Send one communication through its channel; returns the new delivery state.

    Idempotent: a delivered communication is not sent again. On failure the error is stored and
    re-raised so the job is retried, except after the last attempt, which marks it failed.
    """
    # populate_existing: what the lock returns must be the row now, not a copy this session held
    communication = db.session.scalar(select(Communication).where(Communication.id == communication_id)
                                      .with_for_update().execution_options(populate_existing=True))
    if communication is None or communication.delivery_status in ("delivered", "recorded"):
        return communication.delivery_status if communication else "missing"
    channel = db.session.scalar(select(CommunicationChannel).where(
        CommunicationChannel.workspace_id == communication.workspace_id,
        CommunicationChannel.recipients == communication.recipients))
    communication.attempts += 1
    try:
        if channel is None:
            raise DeliveryError("no channel is configured for this recipient group any more")
        if channel.kind == "email":
            _send_email(channel, communication)
        else:
            _post_webhook(channel, communication)
    except DeliveryError as error:
        communication.last_error = str(error)[:500]
        communication.delivery_status = "failed" if final_attempt else "retrying"
        db.session.commit()
        if final_attempt:
            return "failed"
        raise
    communication.delivery_status, communication.last_error = "delivered", None
    communication.delivered_at = db.func.now()
    db.session.commit()
    return "delivered"


def _send_email(channel: CommunicationChannel, communication: Communication) -> None:
    send_email(channel.smtp_host, channel.smtp_port, channel.from_address, channel.to_addresses or [],
               communication.subject, communication.message, f"<{communication.id}@opsdesk>")


def _post_webhook(channel: CommunicationChannel, communication: Communication) -> None:
    post_signed_json(channel.webhook_url, channel.signing_secret, "incident.communication", str(communication.id), {
        "event": "incident.communication", "communication_id": str(communication.id),
        "incident_id": str(communication.incident_id), "recipients": communication.recipients,
        "subject": communication.subject, "message": communication.message, "sender": communication.sender,
        "created_at": communication.created_at.isoformat() if communication.created_at else None,
    })


# -- channels ---------------------------------------------------------------------------------------

def list_channels(*, actor: Actor) -> dict[str, CommunicationChannel]:
    rows = db.session.scalars(select(CommunicationChannel).where(CommunicationChannel.workspace_id == actor.workspace_id))
    return {row.recipients: row for row in rows}


def save_channel(*, actor: Actor, recipients: str, kind: str, smtp_host: str | None = None,
                 smtp_port: int | None = None, from_address: str | None = None, to_addresses: list[str] | None = None,
                 webhook_url: str | None = None) -> CommunicationChannel:
    """Create or replace where a recipient group's messages go; audited."""
    if not actor.can("settings.manage"):
        raise NotAllowed("Only workspace admins configure channels.")
    problems = {}
    if recipients not in RECIPIENT_GROUPS:
        problems["recipients"] = "unknown recipient group"
    if kind not in CHANNEL_KINDS:
        problems["kind"] = "e-mail or webhook"
    if kind == "email":
        to_addresses = [a.strip() for a in (to_addresses or []) if a.strip()]
        if not smtp_host:
            problems["smtp_host"] = "required for e-mail"
        if smtp_port is not None and not 1 <= smtp_port <= 65535:
            problems["smtp_port"] = "a port between 1 and 65535"
        if not from_address or "@" not in from_address:
            problems["from_address"] = "an e-mail address"
        if not to_addresses or any("@" not in a for a in to_addresses):
            problems["to_addresses"] = "one or more e-mail addresses"
    if kind == "webhook" and not (webhook_url or "").startswith(("https://", "http://")):
        problems["webhook_url"] = "an http(s) URL"
    if problems:
        raise ValidationFailed("The channel could not be saved.", fields=problems)
    channel = db.session.scalar(select(CommunicationChannel).where(
        CommunicationChannel.workspace_id == actor.workspace_id, CommunicationChannel.recipients == recipients))
    created = channel is None
    if created:
        channel = CommunicationChannel(workspace_id=actor.workspace_id, recipients=recipients, kind=kind)
        db.session.add(channel)
    channel.kind = kind
    channel.smtp_host, channel.smtp_port = (smtp_host, smtp_port or 25) if kind == "email" else (None, None)
    channel.from_address = from_address if kind == "email" else None
    channel.to_addresses = to_addresses if kind == "email" else None
    channel.webhook_url = webhook_url if kind == "webhook" else None
    if kind == "webhook" and not channel.signing_secret:
        channel.signing_secret = secrets.token_urlsafe(32)
    db.session.flush()
    audit.record(actor=actor, action="create" if created else "update", ref_type="communication_channel",
                 ref_id=channel.id, field_deltas={"recipients": [None, recipients], "kind": [None, kind],
                                                  "target": [None, webhook_url or ", ".join(to_addresses or [])]})
    db.session.commit()
    return channel
