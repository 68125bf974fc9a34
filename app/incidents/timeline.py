"""The incident timeline: append-only entries, retroactive ones, and corrections."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.errors import ValidationFailed
from app.extensions import db
from app.incidents.models import Incident, TimelineEntry

MAX_BODY = 20_000


def now() -> datetime:
    return datetime.now(UTC)


def add(incident: Incident, *, event_type: str, body: str, author: str, at: datetime | None = None,
        data: dict | None = None, corrects: TimelineEntry | None = None) -> TimelineEntry:
    """Append one entry to the incident's timeline (the caller's transaction)."""
    entry = TimelineEntry(id=uuid.uuid4(), incident_id=incident.id, workspace_id=incident.workspace_id,
                          tenant_id=incident.tenant_id, event_type=event_type, body=body[:MAX_BODY], author=author,
                          data=data or {}, corrects_id=corrects.id if corrects else None,
                          occurred_at=at or now())
    db.session.add(entry)
    return entry


def check_occurred_at(value: datetime | None, *, created_at: datetime | None = None) -> datetime:
    """A retroactive time: not in the future (a minute of clock skew allowed), not absurdly old."""
    moment = now()
    if value is None:
        return moment
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > moment + timedelta(minutes=1):
        raise ValidationFailed("A timeline entry cannot happen in the future.",
                               fields={"occurred_at": "must not be in the future"})
    if value < moment - timedelta(days=365):
        raise ValidationFailed("That is more than a year ago.", fields={"occurred_at": "within the last year"})
    return value


def entries(incident_id: uuid.UUID) -> list[TimelineEntry]:
    """Oldest first by when things happened (retroactive entries fall into place), then by insertion."""
    return list(db.session.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
                                   .order_by(TimelineEntry.occurred_at, TimelineEntry.seq)))


def entry_of(incident: Incident, entry_id: uuid.UUID | str) -> TimelineEntry:
    try:
        wanted = uuid.UUID(str(entry_id))
    except ValueError:
        raise ValidationFailed("No such timeline entry.", fields={"corrects": "unknown entry"}) from None
    entry = db.session.scalar(select(TimelineEntry).where(TimelineEntry.id == wanted,
                                                          TimelineEntry.incident_id == incident.id))
    if entry is None:
        raise ValidationFailed("No such timeline entry on this incident.", fields={"corrects": "unknown entry"})
    return entry
