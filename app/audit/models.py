"""`audit_events`: one append-only table, hash-chained per workspace by a database trigger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.tenancy import WorkspaceOwned

AUDIT_ACTIONS = (
    "identify", "create", "read", "update", "notify", "escalate", "resolve", "close", "review",
    "kb_update", "vendor_engagement", "simulation", "tool_use", "link", "approve", "reject",
    "login", "logout", "break_glass",
    "platform.ops.runbooks.preflight", "platform.ops.runbooks.start",
    "platform.ops.runbooks.completed", "platform.ops.runbooks.failed",
)
ACTOR_TYPES = ("user", "platform_user", "service_account", "system")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class AuditEvent(WorkspaceOwned, db.Model):
    """One governed action. `chain_seq`, `prev_hash` and `row_hash` are set by the database."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_in("action", AUDIT_ACTIONS), name="action_known"),
        CheckConstraint(_in("actor_type", ACTOR_TYPES), name="actor_type_known"),
        Index("uq_audit_events_chain", func.coalesce(text("workspace_id"), 0), "chain_seq", unique=True),
        Index("ix_audit_events_ws_id", "workspace_id", "id"),
        Index("ix_audit_events_ws_action_id", "workspace_id", "action", "id"),
        Index("ix_audit_events_ws_tenant_id", "workspace_id", "tenant_id", "id"),
        Index("ix_audit_events_ws_actor_id", "workspace_id", "actor_label", "id"),
        Index("ix_audit_events_ws_ref_id", "workspace_id", "ref_type", "ref_id", "id"),
        Index("ix_audit_events_ws_occurred", "workspace_id", "occurred_at"),
        Index("ix_audit_events_ws_privileged_id", "workspace_id", "id", postgresql_where=text("is_privileged")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    chain_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prev_hash: Mapped[str] = mapped_column(String(64), server_default="")
    row_hash: Mapped[str] = mapped_column(String(64), server_default="")
    action: Mapped[str] = mapped_column(String(64))
    ref_type: Mapped[str] = mapped_column(String(40))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_label: Mapped[str] = mapped_column(String(254))
    field_deltas: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    context: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    is_privileged: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # set by the trigger from clock_timestamp() unless a past time is given (imports, retroactive records)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
