"""Imports every model module so SQLAlchemy and Alembic see the whole schema."""

from app.alerts.models import Alert, AlertRead  # noqa: F401
from app.audit.models import AuditEvent  # noqa: F401
from app.auth.models import BreakGlassGrant, LoginSession, PlatformUser, ServiceAccount, User  # noqa: F401
from app.changes.models import ChangeRequest, IncidentChangeLink  # noqa: F401
from app.communications.models import Communication, CommunicationChannel  # noqa: F401
from app.findings.models import Finding, MonitoringEvent  # noqa: F401
from app.incidents.models import (  # noqa: F401
                                  Incident,
                                  IncidentStatusCount,
                                  IncidentTotal,
                                  SlaPolicy,
                                  TimelineEntry,
                                  ToolUsage,
                                  VendorEngagement,
)
from app.reviews.models import PirActionItem, PostIncidentReview  # noqa: F401
from app.runbooks.models import AlertDelivery, AlertRule, OperationRun, OperationRunPart  # noqa: F401
from app.workspaces.models import Membership, MembershipTenant, ReferenceCounter, Tenant, Workspace  # noqa: F401
