"""Imports every model module so SQLAlchemy and Alembic see the whole schema."""

from app.audit.models import AuditEvent  # noqa: F401
from app.auth.models import BreakGlassGrant, LoginSession, PlatformUser, ServiceAccount, User  # noqa: F401
from app.workspaces.models import Membership, MembershipTenant, Tenant, Workspace  # noqa: F401
