"""Roles of workspace members and platform users, and what each may do.

Routes and services ask for a capability (`can(role, "audit.view")`), never for a role by name,
so a new role or a changed duty is one edit here.
"""

from __future__ import annotations

ROLES: dict[str, str] = {
    "end_user": "End user",
    "service_desk_analyst": "Service desk analyst (L1)",
    "resolver": "Resolver (L2/L3, devops, facilities)",
    "service_desk_manager": "Service desk manager",
    "incident_manager": "Incident manager",
    "change_manager": "Change manager",
    "auditor": "Auditor (read-only)",
    "workspace_admin": "Workspace admin",
}

PLATFORM_ROLES: dict[str, str] = {
    "platform_operator": "Platform operator",
    "platform_admin": "Platform admin",
}

MANAGERS = frozenset({"service_desk_manager", "incident_manager", "change_manager"})
# who works incidents day to day (SOPs 3-13)
RESPONDERS = frozenset({"service_desk_analyst", "resolver", "service_desk_manager", "incident_manager"})

CAPABILITIES: dict[str, frozenset[str]] = {
    "console.use": frozenset(ROLES),
    "incidents.view": frozenset(ROLES),
    "incidents.create": frozenset(ROLES) - {"auditor"},
    "incidents.work": RESPONDERS,
    "incidents.link_change": RESPONDERS | {"change_manager"},
    "incidents.communicate": RESPONDERS | {"change_manager"},
    "incidents.close_high_priority": frozenset({"incident_manager", "service_desk_manager"}),
    "incidents.simulate": frozenset({"incident_manager"}),
    "sla.report": RESPONDERS | MANAGERS | {"auditor", "workspace_admin"},
    "reviews.view": MANAGERS | {"auditor", "workspace_admin"},
    "reviews.write": frozenset({"incident_manager", "service_desk_manager"}),
    "changes.view": frozenset(ROLES) - {"end_user"},
    "changes.create": RESPONDERS | MANAGERS,
    "changes.approve": frozenset({"change_manager"}),
    "alerts.view": frozenset(ROLES),
    "settings.manage": frozenset({"workspace_admin"}),
    "alert_rules.manage": frozenset({"workspace_admin"}),
    "audit.view": MANAGERS | {"auditor", "workspace_admin"},
    "audit.export": MANAGERS | {"auditor", "workspace_admin"},
    "members.view": frozenset({"workspace_admin", "service_desk_manager", "incident_manager"}),
    "members.manage": frozenset({"workspace_admin"}),
    "tenants.manage": frozenset({"workspace_admin"}),
}

PLATFORM_CAPABILITIES: dict[str, frozenset[str]] = {
    "system.use": frozenset(PLATFORM_ROLES),
    "system.audit.view": frozenset(PLATFORM_ROLES),
    "system.break_glass": frozenset(PLATFORM_ROLES),
    "system.runbooks.view": frozenset(PLATFORM_ROLES),
    "system.runbooks.run": frozenset(PLATFORM_ROLES),
    "system.jobs.manage": frozenset(PLATFORM_ROLES),  # retry or requeue failed jobs and deliveries
    "system.platform_users.manage": frozenset({"platform_admin"}),
}


def can(role: str | None, capability: str) -> bool:
    """Whether a workspace role grants a capability (unknown capabilities grant nothing)."""
    return role is not None and role in CAPABILITIES.get(capability, frozenset())


def platform_can(role: str | None, capability: str, *, elevated: bool = False) -> bool:
    """Whether a platform role grants a capability; break-glass elevation acts as platform_admin."""
    if role is None:
        return False
    effective = "platform_admin" if elevated else role
    return effective in PLATFORM_CAPABILITIES.get(capability, frozenset())
