"""Dispatching alert events to a workspace's alert rules, and delivering them.

`dispatch` writes one `alert_deliveries` row per enabled rule in the caller's transaction (so the
event and the failure it reports commit together) and queues one delivery job per row after the
commit. `deliver` sends one row through its channel: in-app, SMTP e-mail or a signed webhook,
retried with back-off by RQ, its state kept on the row for /system to show. A workspace without
a rule for the event still hears about it: its workspace admins get an in-app alert.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.actors import Actor
from app.alerts.service import raise_alert
from app.audit import service as audit
from app.delivery import DeliveryError, post_signed_json, send_email
from app.errors import InvalidTransition, NotAllowed, NotFound, ServiceUnavailable, ValidationFailed
from app.extensions import db
from app.runbooks.models import ALERT_CHANNELS, AlertDelivery, AlertRule
from app.transactions import after_commit
from app.workspaces.models import Tenant, Workspace
from app.workspaces.roles import ROLES

log = logging.getLogger(__name__)

# every event that can be dispatched; a rule can only be made for one of these
EVENT_TYPES: dict[str, str] = {
    "operations.run.failed": "A runbook run failed",
}
CHANNEL_LABELS: dict[str, str] = {"in_app": "In-app alert", "email": "E-mail (SMTP)", "webhook": "Webhook"}
STATUS_LABELS: dict[str, str] = {"queued": "Queued", "retrying": "Retrying", "delivered": "Delivered",
                                 "failed": "Failed"}
FALLBACK_ROLE = "workspace_admin"  # who hears about an event the workspace has no rule for
RETRY_INTERVALS = [10, 60, 300, 900]  # seconds before the 2nd … 5th attempt
MAX_MESSAGE = 1000
MAX_RULES = 50
MAX_RECIPIENTS = 20
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
HOST_RE = re.compile(r"^[A-Za-z0-9.-]{1,255}$|^\[[0-9A-Fa-f:.]+\]$")
PAGE_SIZE = 50


# -- dispatching and delivering -----------------------------------------------------------------------

def dispatch(*, workspace_id: int, tenant_id: int | None, event_type: str, message: str, link: str | None = None,
             metadata: dict | None = None) -> list[int]:
    """Record one delivery per enabled rule of the workspace for this event, in the caller's
    transaction (the caller commits), and queue their delivery for after the commit.

    Without a rule the workspace admins get an in-app alert (a delivery with no rule), so an
    event is never dropped silently. Returns the delivery ids.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown alert event {event_type!r}; add it to EVENT_TYPES")
    payload = {
        "event_type": event_type, "message": (message or "").strip()[:MAX_MESSAGE], "link": _safe_link(link),
        # JSON-safe whatever the caller passed (ids, datetimes, UUIDs become text)
        "metadata": json.loads(json.dumps(metadata or {}, default=str)),
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    rules = db.session.scalars(select(AlertRule).where(
        AlertRule.workspace_id == workspace_id, AlertRule.event_type == event_type, AlertRule.enabled)
        .order_by(AlertRule.id)).all()
    deliveries = [AlertDelivery(workspace_id=workspace_id, tenant_id=tenant_id, rule_id=rule.id,
                                event_type=event_type, channel=rule.channel, payload=payload, status="queued")
                  for rule in rules]
    if not deliveries:
        deliveries = [AlertDelivery(workspace_id=workspace_id, tenant_id=tenant_id, rule_id=None,
                                    event_type=event_type, channel="in_app", payload=payload, status="queued")]
    db.session.add_all(deliveries)
    db.session.flush()
    ids = [delivery.id for delivery in deliveries]
    after_commit(db.session, lambda: queue_deliveries(ids))
    return ids


def _safe_link(link: str | None) -> str | None:
    """A link the console may render as href: a path of this site or an http(s) URL, else none."""
    if not link:
        return None
    if (link.startswith("/") and not link.startswith("//")) or link.startswith(("https://", "http://")):
        return link[:500]
    return None


def queue_deliveries(delivery_ids: list[int]) -> int:
    """Enqueue one delivery job per id; what cannot be enqueued (Redis down) stays queued for the
    sweeper (jobs.alerting.requeue_stalled_alerts). Returns how many were enqueued."""
    queued = 0
    for delivery_id in delivery_ids:
        try:
            _enqueue(delivery_id)
        except Exception:  # Redis down or slow: the row is safe in the database; the sweeper retries
            log.warning("could not enqueue alert delivery %s", delivery_id, exc_info=True)
        else:
            queued += 1
    return queued


def _enqueue(delivery_id: int) -> None:
    from rq import Retry

    from jobs.alerting import deliver_alert
    from jobs.queues import enqueue

    enqueue("notifications", deliver_alert, int(delivery_id), retry=Retry(max=len(RETRY_INTERVALS),
                                                                           interval=RETRY_INTERVALS))


def deliver(delivery_id: int, *, final_attempt: bool) -> str:
    """Send one delivery through its channel; returns the new state.

    Idempotent: a delivered row is not sent again (the row lock makes two runs at once queue up
    behind each other). On failure a short, safe error is stored and the error re-raised so the
    job is retried, except on the last attempt, which marks the delivery failed.
    """
    # populate_existing: what the lock returns must be the row now, not a copy this session held
    delivery = db.session.scalar(select(AlertDelivery).where(AlertDelivery.id == delivery_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if delivery is None:
        return "missing"
    if delivery.status == "delivered":
        db.session.rollback()
        return "delivered"
    rule = db.session.get(AlertRule, delivery.rule_id) if delivery.rule_id is not None else None
    delivery.attempts += 1
    db.session.flush()
    try:
        # a savepoint: a failed attempt undoes what it wrote (an in-app alert) but keeps the row lock
        with db.session.begin_nested():
            _send(delivery, rule)
    except Exception as error:
        if not isinstance(error, DeliveryError):
            # a bug or an unexpected library error: logged in full, stored as its kind only
            log.exception("alert delivery %s failed unexpectedly", delivery_id)
            error = DeliveryError(f"unexpected error: {error.__class__.__name__}")
        delivery.last_error = str(error)[:500]
        delivery.status = "failed" if final_attempt else "retrying"
        db.session.commit()
        if final_attempt:
            return "failed"
        raise error from None
    delivery.status, delivery.last_error = "delivered", None
    delivery.delivered_at = func.now()
    db.session.commit()
    return "delivered"


def _send(delivery: AlertDelivery, rule: AlertRule | None) -> None:
    payload = delivery.payload or {}
    if delivery.channel == "in_app":
        raise_alert(workspace_id=delivery.workspace_id, tenant_id=delivery.tenant_id,
                    audience_role=rule.audience_role if rule is not None and rule.audience_role else FALLBACK_ROLE,
                    kind=delivery.event_type[:60], message=payload.get("message") or delivery.event_type,
                    link=payload.get("link"), data={"delivery_id": delivery.id, **(payload.get("metadata") or {})},
                    dedupe_key=f"delivery:{delivery.id}")
        return
    if rule is None:
        raise DeliveryError("the alert rule of this delivery was deleted")
    if delivery.channel == "email":
        subject, body = _email_text(delivery)
        send_email(rule.smtp_host, rule.smtp_port, rule.from_address, rule.to_addresses or [], subject, body,
                   f"<alert-{delivery.id}@opsdesk>")
    elif delivery.channel == "webhook":
        post_signed_json(rule.webhook_url, rule.signing_secret, delivery.event_type, str(delivery.id), {
            "event": delivery.event_type, "delivery_id": delivery.id, "workspace_id": delivery.workspace_id,
            "tenant_id": delivery.tenant_id, "message": payload.get("message"), "link": payload.get("link"),
            "metadata": payload.get("metadata") or {}, "occurred_at": payload.get("occurred_at")})
    else:
        raise DeliveryError(f"unknown channel {delivery.channel}")


def _email_text(delivery: AlertDelivery) -> tuple[str, str]:
    payload = delivery.payload or {}
    message = payload.get("message") or delivery.event_type
    label = EVENT_TYPES.get(delivery.event_type, delivery.event_type)
    subject = " ".join(f"[Opsdesk] {label}: {message}".split())[:200]  # one line, whatever the message
    lines = [message, ""]
    if payload.get("link"):
        lines.append(f"Link: {payload['link']}")
    for key, value in (payload.get("metadata") or {}).items():
        lines.append(f"{key}: {value}")
    lines += ["", f"Event {delivery.event_type} at {payload.get('occurred_at')}, delivery {delivery.id}."]
    return subject, "\n".join(lines)


# -- rules --------------------------------------------------------------------------------------------

def _require(actor: Actor, capability: str, message: str) -> None:
    if not actor.can(capability):
        raise NotAllowed(message)


def list_rules(*, actor: Actor) -> list[AlertRule]:
    """The actor's workspace's rules, by event then age."""
    _require(actor, "alert_rules.manage", "Only workspace admins manage alert rules.")
    return list(db.session.scalars(select(AlertRule).where(AlertRule.workspace_id == actor.workspace_id)
                                   .order_by(AlertRule.event_type, AlertRule.id)))


def rule_target(rule: AlertRule) -> str:
    """Where a rule sends, in words (no secret)."""
    if rule.channel == "in_app":
        return ROLES.get(rule.audience_role or "", rule.audience_role or "")
    if rule.channel == "email":
        return f"{', '.join(rule.to_addresses or [])} via {rule.smtp_host}:{rule.smtp_port}"
    return rule.webhook_url or ""


def _audited_target(rule: AlertRule) -> str:
    """The rule's target for the audit trail: a webhook URL without credentials or query string,
    where receivers often put a token."""
    if rule.channel != "webhook":
        return rule_target(rule)
    parts = urllib.parse.urlsplit(rule.webhook_url or "")
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def _valid_url(url: str) -> bool:
    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.port  # noqa: B018 (raises on a port out of range)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname) and not any(c.isspace() for c in url)


def _same_target(rule: AlertRule, channel: str, audience_role: str | None, webhook_url: str | None) -> bool:
    if rule.channel != channel:
        return False
    if channel == "in_app":
        return rule.audience_role == audience_role
    return channel == "webhook" and rule.webhook_url == webhook_url


def save_rule(*, actor: Actor, event_type: str, channel: str, audience_role: str | None = None,
              smtp_host: str | None = None, smtp_port: int | None = None, from_address: str | None = None,
              to_addresses: list[str] | None = None, webhook_url: str | None = None) -> AlertRule:
    """Add an alert rule to the actor's workspace; audited, committed.

    A webhook rule gets a signing secret made here: the caller may show it once (it is on the
    returned rule), and it never goes into the audit trail.
    """
    _require(actor, "alert_rules.manage", "Only workspace admins manage alert rules.")
    problems: dict[str, str] = {}
    smtp_host, from_address, webhook_url = ((v or "").strip() or None for v in (smtp_host, from_address, webhook_url))
    if event_type not in EVENT_TYPES:
        problems["event_type"] = "choose one of the events"
    if channel not in ALERT_CHANNELS:
        problems["channel"] = "in-app, e-mail or webhook"
    if channel == "in_app" and audience_role not in ROLES:
        problems["audience_role"] = "choose the role that gets the alert"
    if channel == "email":
        to_addresses = [a.strip() for a in (to_addresses or []) if a.strip()]
        if not smtp_host:
            problems["smtp_host"] = "required for e-mail"
        elif not HOST_RE.match(smtp_host):
            problems["smtp_host"] = "a host name or IP address"
        if smtp_port is not None and not 1 <= smtp_port <= 65535:
            problems["smtp_port"] = "a port between 1 and 65535"
        if not from_address or len(from_address) > 254 or not EMAIL_RE.match(from_address):
            problems["from_address"] = "an e-mail address"
        if not to_addresses or any(len(a) > 254 or not EMAIL_RE.match(a) for a in to_addresses):
            problems["to_addresses"] = "one or more e-mail addresses, separated by commas"
        elif len(to_addresses) > MAX_RECIPIENTS:
            problems["to_addresses"] = f"at most {MAX_RECIPIENTS} addresses"
    if channel == "webhook":
        if not webhook_url or not _valid_url(webhook_url):
            problems["webhook_url"] = "an http(s) URL"
        elif len(webhook_url) > 1000:
            problems["webhook_url"] = "at most 1000 characters"
    if not problems:
        rules = list_rules(actor=actor)
        if len(rules) >= MAX_RULES:
            problems["event_type"] = f"a workspace has at most {MAX_RULES} rules; delete one first"
        elif any(r.event_type == event_type and _same_target(r, channel, audience_role, webhook_url)
                 for r in rules):
            problems["channel"] = "this event already goes there"
    if problems:
        raise ValidationFailed("The alert rule could not be saved.", fields=problems)
    rule = AlertRule(workspace_id=actor.workspace_id, event_type=event_type, channel=channel, enabled=True)
    if channel == "in_app":
        rule.audience_role = audience_role
    elif channel == "email":
        rule.smtp_host, rule.smtp_port = smtp_host, smtp_port or 25
        rule.from_address, rule.to_addresses = from_address, to_addresses
    else:
        rule.webhook_url, rule.signing_secret = webhook_url, secrets.token_urlsafe(32)
    db.session.add(rule)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="alert_rule", ref_id=rule.id,
                 field_deltas={"event_type": [None, event_type], "channel": [None, channel],
                               "target": [None, _audited_target(rule)]})
    db.session.commit()
    return rule


def delete_rule(*, actor: Actor, rule_id: int) -> None:
    """Delete one of the workspace's rules (its past deliveries stay); audited, committed."""
    _require(actor, "alert_rules.manage", "Only workspace admins manage alert rules.")
    rule = db.session.scalar(select(AlertRule).where(AlertRule.id == rule_id,
                                                     AlertRule.workspace_id == actor.workspace_id))
    if rule is None:
        raise NotFound("No such alert rule in this workspace.")
    audit.record(actor=actor, action="update", ref_type="alert_rule", ref_id=rule.id,
                 field_deltas={"event_type": [rule.event_type, None], "channel": [rule.channel, None],
                               "target": [_audited_target(rule), None]}, context={"deleted": True})
    db.session.delete(rule)
    db.session.commit()


# -- the platform view --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryFilters:
    workspace_id: int | None = None
    status: str | None = None
    channel: str | None = None
    event_type: str | None = None


@dataclass
class DeliveryPage:
    rows: list  # rows with the DELIVERY_COLUMNS plus workspace_name, tenant_name
    older_cursor: int | None = None  # pass as before= for the next (older) page
    newer_cursor: int | None = None  # pass as after= for the previous (newer) page


DELIVERY_COLUMNS = (AlertDelivery.id, AlertDelivery.created_at, AlertDelivery.workspace_id, AlertDelivery.tenant_id,
                    AlertDelivery.rule_id, AlertDelivery.event_type, AlertDelivery.channel, AlertDelivery.status,
                    AlertDelivery.attempts, AlertDelivery.last_error, AlertDelivery.delivered_at,
                    AlertDelivery.payload["message"].astext.label("message"),
                    AlertDelivery.payload["link"].astext.label("link"),
                    Workspace.name.label("workspace_name"), Tenant.name.label("tenant_name"))


def list_deliveries(*, actor: Actor, filters: DeliveryFilters, before: int | None = None, after: int | None = None,
                    limit: int = PAGE_SIZE) -> DeliveryPage:
    """One page of deliveries across workspaces, newest first, by keyset on id (`before` = older
    page, `after` = newer page); one query, names joined in."""
    _require(actor, "system.use", "Platform users only.")
    query = (select(*DELIVERY_COLUMNS).join(Workspace, Workspace.id == AlertDelivery.workspace_id)
             .outerjoin(Tenant, Tenant.id == AlertDelivery.tenant_id))
    for column, value in ((AlertDelivery.workspace_id, filters.workspace_id), (AlertDelivery.status, filters.status),
                          (AlertDelivery.channel, filters.channel), (AlertDelivery.event_type, filters.event_type)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        rows = db.session.execute(query.where(AlertDelivery.id > after).order_by(AlertDelivery.id.asc())
                                  .limit(limit + 1)).all()
        page = list(reversed(rows[:limit]))
        return DeliveryPage(rows=page, newer_cursor=page[0].id if len(rows) > limit and page else None,
                            older_cursor=page[-1].id if page else None)
    if before is not None:
        query = query.where(AlertDelivery.id < before)
    rows = db.session.execute(query.order_by(AlertDelivery.id.desc()).limit(limit + 1)).all()
    page = list(rows[:limit])
    return DeliveryPage(rows=page, older_cursor=page[-1].id if len(rows) > limit else None,
                        newer_cursor=page[0].id if before is not None and page else None)


def retry_delivery(*, actor: Actor, delivery_id: int) -> AlertDelivery:
    """Send a failed delivery again: back to queued and enqueued; audited in its workspace's trail."""
    _require(actor, "system.jobs.manage", "Your platform role does not allow retrying deliveries.")
    delivery = db.session.scalar(select(AlertDelivery).where(AlertDelivery.id == delivery_id).with_for_update()
                                 .execution_options(populate_existing=True))
    if delivery is None:
        raise NotFound("No such delivery.")
    if delivery.status != "failed":
        raise InvalidTransition(f"Only failed deliveries can be retried; this one is {delivery.status}.")
    delivery.status = "queued"
    audit.record(actor=actor, action="update", ref_type="alert_delivery", ref_id=delivery.id,
                 workspace_id=delivery.workspace_id, tenant_id=delivery.tenant_id,
                 field_deltas={"status": ["failed", "queued"]},
                 context={"event_type": delivery.event_type, "channel": delivery.channel,
                          "attempts": delivery.attempts, "retry": True})
    db.session.flush()
    # Enqueued before the commit, while this transaction holds the row lock: a job that starts
    # at once waits for the commit, and if Redis is down nothing is written and the user is told.
    try:
        _enqueue(delivery.id)
    except Exception as error:  # Redis down or slow
        log.warning("could not enqueue the retry of alert delivery %s: %s", delivery.id, error)
        raise ServiceUnavailable("The job queue is not answering; the delivery stays failed. Try again.") from None
    db.session.commit()
    return delivery
