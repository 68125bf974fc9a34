"""The incident vocabulary of spec §4: every enum in one place, with labels for the console."""

from __future__ import annotations

SEVERITIES = {"p1": "P1 Critical", "p2": "P2 High", "p3": "P3 Medium", "p4": "P4 Low"}
PRIORITIES = {"high": "High", "medium": "Medium", "low": "Low"}
STATUSES = {
    "open": "Open", "investigating": "Investigating", "escalated": "Escalated", "pending_vendor": "Pending vendor",
    "mitigated": "Mitigated", "resolved": "Resolved", "closed": "Closed",
}
ACTIVE_STATUSES = ("open", "investigating", "escalated", "pending_vendor", "mitigated")
CATEGORIES = {"hardware": "Hardware", "software": "Software", "security": "Security", "performance": "Performance",
              "other": "Other"}
DETECTION_SOURCES = {"user_report": "User report", "monitoring_tool": "Monitoring tool",
                     "automated_alert": "Automated alert"}
TRIGGER_SOURCES = {"manual": "Manual", "automated_drift": "Automated (drift)",
                   "automated_performance": "Automated (performance)", "pagerduty": "PagerDuty",
                   "alertmanager": "Alertmanager"}
TEAMS = {"service_desk": "Service desk", "L1": "L1", "L2": "L2", "L3": "L3", "incident_manager": "Incident manager",
         "change_mgmt": "Change management", "facilities": "Facilities", "devops": "DevOps"}
ESCALATION_TARGETS = ("L1", "L2", "L3", "incident_manager", "change_mgmt", "facilities", "devops")
CONTACT_METHODS = {"phone": "Phone", "email": "E-mail", "vendor_portal": "Vendor portal", "API": "API"}
RECIPIENT_GROUPS = {"end_users": "End users", "stakeholders": "Stakeholders", "executives": "Executives",
                    "IT_staff": "IT staff"}
TIMELINE_TYPES = ("note", "status_change", "escalation", "runbook_step_completed", "automated_alert",
                  "communication", "assignment")
TOOLS = {"monitoring": "Monitoring", "root_cause_analysis": "Root cause analysis",
         "ITSM_service_desk": "ITSM service desk", "incident_response": "Incident response",
         "AI_virtual_agent": "AI virtual agent", "AIOps": "AIOps", "automation_script": "Automation script"}

# spec §4 defaults; a workspace may change them (sla_policies)
DEFAULT_SLO = {
    "p1": {"acknowledge_minutes": 5, "resolve_minutes": 60, "priority": "high"},
    "p2": {"acknowledge_minutes": 15, "resolve_minutes": 240, "priority": "high"},
    "p3": {"acknowledge_minutes": 60, "resolve_minutes": 1440, "priority": "medium"},
    "p4": {"acknowledge_minutes": 240, "resolve_minutes": 4320, "priority": "low"},
}


def sql_in(column: str, values) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"
