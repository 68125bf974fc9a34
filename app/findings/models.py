"""Monitoring events (what senders post) and findings (one per tenant and fingerprint, ideally)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.incidents.vocabulary import sql_in
from app.tenancy import TenantOwned

FINDING_STATES = ("new", "acknowledged", "resolved", "reopened")
EVENT_STATES = ("firing", "resolved")


class Finding(TenantOwned, db.Model):
    """Events of one tenant and fingerprint, with their lifecycle. Duplicates (the same tenant and
    fingerprint twice) are an inconsistency that findings.lifecycle.backfill consolidates."""

    __tablename__ = "findings"
    __table_args__ = (
        CheckConstraint(sql_in("status", FINDING_STATES), name="status_known"),
        Index("ix_findings_ws_tenant_id", "workspace_id", "tenant_id", "id"),
        Index("ix_findings_ws_tenant_fingerprint", "workspace_id", "tenant_id", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500))
    service: Mapped[str | None] = mapped_column(String(200))
    alert_type: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(15), default="new", server_default="new")
    first_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    times_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                          ForeignKey("incidents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MonitoringEvent(TenantOwned, db.Model):
    __tablename__ = "monitoring_events"
    __table_args__ = (
        CheckConstraint(sql_in("status", EVENT_STATES), name="status_known"),
        # the lifecycle backfill reads a finding's events in time order from this index alone
        Index("ix_monitoring_events_finding", "finding_id", "occurred_at", "id", postgresql_include=["status"]),
        Index("ix_monitoring_events_ws_tenant_fingerprint", "workspace_id", "tenant_id", "fingerprint"),
        Index("uq_monitoring_events_dedupe", "workspace_id", "tenant_id", "dedupe_key", unique=True,
              postgresql_where="dedupe_key IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    finding_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("findings.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(30))
    service: Mapped[str | None] = mapped_column(String(200))
    alert_type: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str | None] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="firing", server_default="firing")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    labels: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    payload_excerpt: Mapped[str | None] = mapped_column(Text)  # at most a few KB, never the whole payload
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
