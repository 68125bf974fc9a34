"""OperationRun exactly as `000_*` describes it, its per-tenant progress, and alert plumbing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.incidents.vocabulary import sql_in

RUN_STATUSES = ("queued", "running", "completed")
RUN_OUTCOMES = ("pending", "succeeded", "partially_succeeded", "failed", "blocked", "cancelled")
PART_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
SUMMARY_KEYS = ("total", "processed", "updated", "skipped", "failed", "tenants")
ACTIVE_RUN_SQL = "status IN ('queued', 'running')"


class OperationRun(db.Model):
    """One runbook run: workspace-scoped (tenant_id NULL) for all tenants, else one tenant's."""

    __tablename__ = "operation_runs"
    __table_args__ = (
        CheckConstraint(sql_in("status", RUN_STATUSES), name="status_known"),
        CheckConstraint(sql_in("outcome", RUN_OUTCOMES), name="outcome_known"),
        CheckConstraint("opsdesk_summary_keys_ok(summary_counts)", name="summary_keys_known"),
        # at most one active run per runbook and scope: a second start gets the first run back
        Index("uq_operation_runs_active_identity", "run_identity_hash", unique=True,
              postgresql_where=text(ACTIVE_RUN_SQL)),
        Index("ix_operation_runs_ws_created", "workspace_id", "id"),
        Index("ix_operation_runs_active", "status", postgresql_where=text(ACTIVE_RUN_SQL)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    initiator_name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    outcome: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    run_identity_hash: Mapped[str] = mapped_column(String(64))
    summary_counts: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    failure_summary: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    context: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")


class OperationRunPart(db.Model):
    """One unit of a run's work: a tenant's share (or, for workspace-wide runbooks, the workspace's),
    with its progress cursor committed with each chunk, so a retried job resumes after the last
    chunk and never counts a row twice, and a heartbeat the watchdog reads."""

    __tablename__ = "operation_run_parts"
    __table_args__ = (
        CheckConstraint(sql_in("status", PART_STATES), name="status_known"),
        Index("uq_operation_run_parts_run_tenant", "run_id", text("coalesce(tenant_id, 0)"), unique=True),
        Index("ix_operation_run_parts_unfinished", "run_id", postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("operation_runs.id", ondelete="CASCADE"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    phase: Mapped[str | None] = mapped_column(String(30))
    cursor: Mapped[str | None] = mapped_column(String(200))
    total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    processed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    job_id: Mapped[str | None] = mapped_column(String(200))
    failure: Mapped[dict | None] = mapped_column(JSONB)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


ALERT_CHANNELS = ("in_app", "email", "webhook")
DELIVERY_STATES = ("queued", "retrying", "delivered", "failed")


class AlertRule(db.Model):
    """Where a workspace wants an event (e.g. operations.run.failed) delivered."""

    __tablename__ = "alert_rules"
    __table_args__ = (CheckConstraint(sql_in("channel", ALERT_CHANNELS), name="channel_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(10))
    audience_role: Mapped[str | None] = mapped_column(String(40))  # in_app
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    from_address: Mapped[str | None] = mapped_column(String(254))
    to_addresses: Mapped[list[str] | None] = mapped_column(ARRAY(String(254)))
    webhook_url: Mapped[str | None] = mapped_column(String(1000))
    signing_secret: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertDelivery(db.Model):
    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint(sql_in("status", DELIVERY_STATES), name="status_known"),
        CheckConstraint(sql_in("channel", ALERT_CHANNELS), name="channel_known"),
        Index("ix_alert_deliveries_ws_id", "workspace_id", "id"),
        Index("ix_alert_deliveries_undelivered", "status", postgresql_where=text("status <> 'delivered'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    event_type: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(10))
    payload: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
