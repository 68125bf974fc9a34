"""A post-incident review and its action items."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.incidents.vocabulary import sql_in
from app.tenancy import TenantOwned

PIR_STATES = {"draft": "Draft", "signed_off": "Signed off"}
ACTION_STATES = {"open": "Open", "in_progress": "In progress", "done": "Done"}


class PostIncidentReview(TenantOwned, db.Model):
    __tablename__ = "post_incident_reviews"
    __table_args__ = (CheckConstraint(sql_in("status", PIR_STATES), name="status_known"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    contributing_factors: Mapped[str] = mapped_column(Text, default="", server_default="")
    lessons: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(12), default="draft", server_default="draft")
    author: Mapped[str] = mapped_column(String(255))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewer: Mapped[str | None] = mapped_column(String(255))
    signed_off_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PirActionItem(TenantOwned, db.Model):
    __tablename__ = "pir_action_items"
    __table_args__ = (
        CheckConstraint(sql_in("status", ACTION_STATES), name="status_known"),
        Index("ix_pir_action_items_open", "workspace_id", "due_date", postgresql_where="status <> 'done'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("post_incident_reviews.id", ondelete="RESTRICT"),
                                                 index=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="open", server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
