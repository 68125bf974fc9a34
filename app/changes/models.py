"""A change request: summary, requester, risk, approval by someone else, implementation."""

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
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.incidents.vocabulary import sql_in
from app.tenancy import TenantOwned

RISKS = {"low": "Low", "medium": "Medium", "high": "High"}
APPROVALS = {"pending": "Pending", "approved": "Approved", "rejected": "Rejected"}
IMPLEMENTATION = {"not_started": "Not started", "in_progress": "In progress", "implemented": "Implemented",
                  "rolled_back": "Rolled back"}


class ChangeRequest(TenantOwned, db.Model):
    __tablename__ = "change_requests"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        CheckConstraint(sql_in("risk", RISKS), name="risk_known"),
        CheckConstraint(sql_in("approval_status", APPROVALS), name="approval_known"),
        CheckConstraint(sql_in("implementation_status", IMPLEMENTATION), name="implementation_known"),
        CheckConstraint("approver_id IS NULL OR approver_id <> requester_id", name="approver_not_requester"),
        Index("ix_change_requests_ws_created", "workspace_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    number: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    risk: Mapped[str] = mapped_column(String(10))
    rollback_plan: Mapped[str] = mapped_column(Text, default="", server_default="")
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requester: Mapped[str] = mapped_column(String(255))
    approval_status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approver: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
    implementation_status: Mapped[str] = mapped_column(String(15), default="not_started", server_default="not_started")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def reference(self) -> str:
        return f"CHG-{self.number}"


class IncidentChangeLink(TenantOwned, db.Model):
    __tablename__ = "incident_change_links"

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"), primary_key=True)
    change_request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("change_requests.id", ondelete="RESTRICT"),
                                                         primary_key=True, index=True)
    linked_by: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
