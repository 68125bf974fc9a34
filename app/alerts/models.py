"""An in-app alert addressed to a role in a workspace (optionally one tenant), and who has read it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.tenancy import WorkspaceOwned


class Alert(WorkspaceOwned, db.Model):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_alerts_ws_role_created", "workspace_id", "audience_role", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    audience_role: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    # one alert per breach, however many workers notice it
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertRead(db.Model):
    __tablename__ = "alert_reads"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
