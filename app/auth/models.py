"""People who sign in: console users, platform users, service accounts, and their sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
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
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.workspaces.roles import PLATFORM_ROLES, ROLES


class User(db.Model):
    """A console user; belongs to workspaces through memberships."""

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9._-]{0,79}$'", name="slug_format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PlatformUser(db.Model):
    """An operator of the /system console; never a member of a workspace."""

    __tablename__ = "platform_users"
    __table_args__ = (
        Index("uq_platform_users_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in PLATFORM_ROLES) + ")", name="role_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceAccount(db.Model):
    """A non-human API caller of one workspace, with one role; tokens are issued from the CLI."""

    __tablename__ = "service_accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        CheckConstraint("name ~ '^[a-z0-9][a-z0-9._-]{0,79}$'", name="name_format"),
        CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name="role_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def subject(self) -> str:
        return f"svc:{self.name}"


class LoginSession(db.Model):
    """A signed-in browser session. The cookie holds only a random id whose hash is stored here,
    so signing out (revoking the row) really ends the session, even for a copied cookie."""

    __tablename__ = "login_sessions"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (platform_user_id IS NULL)", name="one_principal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform_user_id: Mapped[int | None] = mapped_column(ForeignKey("platform_users.id", ondelete="CASCADE"),
                                                         index=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)


class BreakGlassGrant(db.Model):
    """A platform user's time-limited elevation, given with a reason; ends by itself at expires_at."""

    __tablename__ = "break_glass_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_user_id: Mapped[int] = mapped_column(ForeignKey("platform_users.id", ondelete="CASCADE"),
                                                  index=True)
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
