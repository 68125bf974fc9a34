"""Communications and the workspace's channels (where each recipient group's messages go)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.incidents.vocabulary import RECIPIENT_GROUPS, sql_in
from app.tenancy import TenantOwned

TEMPLATES = {"acknowledgement": "Acknowledgement", "status_update": "Status update", "resolution": "Resolution",
             "custom": "Custom message"}
DELIVERY_STATES = {"recorded": "Recorded (no channel configured)", "queued": "Queued", "retrying": "Retrying",
                   "delivered": "Delivered", "failed": "Failed"}
CHANNEL_KINDS = {"email": "E-mail (SMTP)", "webhook": "Webhook"}


class Communication(TenantOwned, db.Model):
    __tablename__ = "communications"
    __table_args__ = (
        CheckConstraint(sql_in("recipients", RECIPIENT_GROUPS), name="recipients_known"),
        CheckConstraint(sql_in("template", TEMPLATES), name="template_known"),
        CheckConstraint(sql_in("delivery_status", DELIVERY_STATES), name="delivery_known"),
        Index("ix_communications_incident", "incident_id", "created_at"),
        Index("ix_communications_undelivered", "workspace_id", "delivery_status",
              postgresql_where="delivery_status IN ('queued', 'retrying', 'failed')"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"))
    recipients: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(20), default="custom", server_default="custom")
    subject: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(String(255))
    channel_kind: Mapped[str | None] = mapped_column(String(10))
    delivery_status: Mapped[str] = mapped_column(String(10), default="recorded", server_default="recorded")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CommunicationChannel(db.Model):
    """Where one recipient group's messages of a workspace go: SMTP e-mail or a webhook."""

    __tablename__ = "communication_channels"
    __table_args__ = (
        UniqueConstraint("workspace_id", "recipients"),
        CheckConstraint(sql_in("recipients", RECIPIENT_GROUPS), name="recipients_known"),
        CheckConstraint(sql_in("kind", CHANNEL_KINDS), name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    recipients: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    # e-mail: the SMTP relay and the addresses; webhook: the URL (signed with the secret)
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    from_address: Mapped[str | None] = mapped_column(String(254))
    to_addresses: Mapped[list[str] | None] = mapped_column(ARRAY(String(254)))
    webhook_url: Mapped[str | None] = mapped_column(String(1000))
    signing_secret: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
