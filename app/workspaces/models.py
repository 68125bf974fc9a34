"""Workspaces own tenants; users join workspaces through memberships with one role each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.workspaces.roles import ROLES

SLUG_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"


class Workspace(db.Model):
    __tablename__ = "workspaces"
    __table_args__ = (CheckConstraint(f"slug ~ '{SLUG_PATTERN}'", name="slug_format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    tenants: Mapped[list[Tenant]] = relationship(back_populates="workspace", order_by="Tenant.name",
                                                 lazy="raise")


class Tenant(db.Model):
    __tablename__ = "tenants"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slug"),
        UniqueConstraint("workspace_id", "id"),
        CheckConstraint(f"slug ~ '{SLUG_PATTERN}'", name="slug_format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    slug: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    workspace: Mapped[Workspace] = relationship(back_populates="tenants", lazy="raise")


membership_role_check = "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")"


class Membership(db.Model):
    """A user's place in a workspace: one role, optionally limited to some tenants."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "workspace_id"),
        CheckConstraint(membership_role_check, name="role_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())

    user = relationship("User", lazy="raise")
    tenant_links: Mapped[list[MembershipTenant]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")

    @property
    def tenant_ids(self) -> tuple[int, ...] | None:
        """The tenants this member is limited to, or None for every tenant of the workspace."""
        ids = tuple(sorted(link.tenant_id for link in self.tenant_links))
        return ids or None


class MembershipTenant(db.Model):
    __tablename__ = "membership_tenants"

    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"),
                                               primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)


class ReferenceCounter(db.Model):
    """Per-workspace human numbers (INC-1042, CHG-17): one row per kind, bumped under its row lock."""

    __tablename__ = "reference_counters"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)
