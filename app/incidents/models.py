"""Incidents, their append-only timeline, vendor engagements, tool usage and the SLA policy."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.incidents.vocabulary import (
    CATEGORIES,
    CONTACT_METHODS,
    DETECTION_SOURCES,
    PRIORITIES,
    SEVERITIES,
    STATUSES,
    TEAMS,
    TIMELINE_TYPES,
    TOOLS,
    TRIGGER_SOURCES,
    sql_in,
)
from app.tenancy import TenantOwned

OPEN_STATUSES_SQL = "status IN ('open', 'investigating', 'escalated', 'pending_vendor', 'mitigated')"


class Incident(TenantOwned, db.Model):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        CheckConstraint(sql_in("severity", SEVERITIES), name="severity_known"),
        CheckConstraint(sql_in("priority", PRIORITIES), name="priority_known"),
        CheckConstraint(sql_in("status", STATUSES), name="status_known"),
        CheckConstraint("category IS NULL OR " + sql_in("category", CATEGORIES), name="category_known"),
        CheckConstraint(sql_in("detection_source", DETECTION_SOURCES), name="detection_source_known"),
        CheckConstraint(sql_in("trigger_source", TRIGGER_SOURCES), name="trigger_source_known"),
        CheckConstraint("assigned_team IS NULL OR " + sql_in("assigned_team", TEAMS), name="team_known"),
        CheckConstraint("char_length(title) BETWEEN 1 AND 500", name="title_length"),
        Index("ix_incidents_ws_created", "workspace_id", text("created_at DESC"), text("id DESC")),
        Index("ix_incidents_ws_tenant_created", "workspace_id", "tenant_id", text("created_at DESC"), text("id DESC")),
        Index("ix_incidents_ws_status_created", "workspace_id", "status", text("created_at DESC"), text("id DESC")),
        Index("ix_incidents_ws_updated", "workspace_id", text("updated_at DESC"), text("id DESC")),
        Index("ix_incidents_ws_severity_created", "workspace_id", "severity", "created_at", "id"),
        Index("ix_incidents_open_by_severity", "workspace_id", "tenant_id", "severity",
              postgresql_where=text(OPEN_STATUSES_SQL)),
        Index("ix_incidents_open_resolve_due", "resolve_due_at",
              postgresql_where=text(OPEN_STATUSES_SQL + " AND NOT resolve_breached")),
        Index("ix_incidents_open_ack_due", "acknowledge_due_at",
              postgresql_where=text("status = 'open' AND NOT acknowledge_breached")),
        Index("ix_incidents_labels", "labels", postgresql_using="gin"),
        Index("ix_incidents_search", "search", postgresql_using="gin"),
        # live search on the board looks at active incidents: a tenth of the rows, a tenth of the postings
        Index("ix_incidents_search_active", "search", postgresql_using="gin", postgresql_where=text(OPEN_STATUSES_SQL)),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4,
                                          server_default=func.gen_random_uuid())
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    severity: Mapped[str] = mapped_column(String(2))
    priority: Mapped[str] = mapped_column(String(6))
    priority_overridden: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    priority_justification: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")
    category: Mapped[str | None] = mapped_column(String(20))
    subcategory: Mapped[str | None] = mapped_column(String(100))
    detection_source: Mapped[str] = mapped_column(String(20), default="user_report", server_default="user_report")
    trigger_source: Mapped[str] = mapped_column(String(30), default="manual", server_default="manual")
    model_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    affected_service: Mapped[str | None] = mapped_column(String(200))
    labels: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    assigned_team: Mapped[str | None] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(255))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reporter: Mapped[str] = mapped_column(String(255))
    runbook_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    workaround_available: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    workaround: Mapped[str | None] = mapped_column(Text)
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    closure_notes: Mapped[str | None] = mapped_column(Text)
    is_simulation: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    simulation: Mapped[dict | None] = mapped_column(JSONB)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mitigated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledge_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolve_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledge_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    resolve_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    search = mapped_column(TSVECTOR, Computed(
        "to_tsvector('simple'::regconfig, 'INC-' || number::text || ' ' || title || ' ' "
        "|| coalesce(affected_service, '') || ' ' || opsdesk_labels_text(labels))", persisted=True))

    @property
    def reference(self) -> str:
        return f"INC-{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status not in ("resolved", "closed")

    @property
    def breached(self) -> bool:
        return self.acknowledge_breached or self.resolve_breached


class TimelineEntry(TenantOwned, db.Model):
    """Append-only (database triggers refuse UPDATE and DELETE). A correction is a new entry that
    points at the one it corrects; `occurred_at` may lie before the entry was written."""

    __tablename__ = "incident_timeline"
    __table_args__ = (
        CheckConstraint(sql_in("event_type", TIMELINE_TYPES), name="event_type_known"),
        CheckConstraint("occurred_at <= created_at + interval '1 minute'", name="not_in_future"),
        Index("ix_incident_timeline_incident", "incident_id", "occurred_at", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4,
                                          server_default=func.gen_random_uuid())
    seq: Mapped[int] = mapped_column(BigInteger, server_default=text("nextval('incident_timeline_seq')"))
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"))
    event_type: Mapped[str] = mapped_column(String(30))
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incident_timeline.id", ondelete="RESTRICT"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VendorEngagement(TenantOwned, db.Model):
    __tablename__ = "vendor_engagements"
    __table_args__ = (CheckConstraint(sql_in("contact_method", CONTACT_METHODS), name="contact_method_known"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"), index=True)
    vendor: Mapped[str] = mapped_column(String(200))
    contact_method: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(200))
    engaged_by: Mapped[str] = mapped_column(String(255))
    engaged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ToolUsage(TenantOwned, db.Model):
    """SOP 17: a tool action recorded against an incident (nothing is executed from here)."""

    __tablename__ = "tool_usages"
    __table_args__ = (CheckConstraint(sql_in("tool", TOOLS), name="tool_known"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"), index=True)
    tool: Mapped[str] = mapped_column(String(30))
    action_summary: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SlaPolicy(db.Model):
    """One workspace's targets per severity (spec §4 defaults until changed)."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        CheckConstraint(sql_in("severity", SEVERITIES), name="severity_known"),
        CheckConstraint(sql_in("default_priority", PRIORITIES), name="priority_known"),
        CheckConstraint("acknowledge_minutes > 0 AND resolve_minutes >= acknowledge_minutes", name="minutes_sane"),
    )

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    severity: Mapped[str] = mapped_column(String(2), primary_key=True)
    acknowledge_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)
    default_priority: Mapped[str] = mapped_column(String(6))


class IncidentTotal(db.Model):
    """How many incidents were ever created, per severity and trigger: the mlplatform_incidents_total
    counter, kept in the creating transaction and read at scrape time so every process agrees."""

    __tablename__ = "incident_totals"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    severity: Mapped[str] = mapped_column(String(2), primary_key=True)
    trigger_source: Mapped[str] = mapped_column(String(30), primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class IncidentStatusCount(db.Model):
    """How many incidents share each combination of the board's coarse filters, kept by a trigger
    on incidents: the board's counts per status and the open-incidents gauge read this instead of
    counting a million rows."""

    __tablename__ = "incident_status_counts"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    severity: Mapped[str] = mapped_column(String(2), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    priority: Mapped[str] = mapped_column(String(6), primary_key=True)
    team: Mapped[str] = mapped_column(String(20), primary_key=True)  # '' when unassigned
    breached: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    is_simulation: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
