"""The audit filter bars (console and /system)."""

from __future__ import annotations

from app.audit.models import AUDIT_ACTIONS
from app.audit.service import AuditFilters
from app.filters import FilterBar, FilterField, ParsedFilters, check_window

_SHARED = (
    FilterField("action", "Action", kind="select", choices={"": "Any action", **{a: a for a in AUDIT_ACTIONS}}),
    FilterField("actor", "Actor", max_length=254, placeholder="e-mail or svc:name", search=True),
    FilterField("ref_type", "Reference type", max_length=40, placeholder="e.g. membership", size=14),
    FilterField("ref_id", "Reference id", max_length=64, size=10),
)
_WINDOW = (FilterField("since", "From (UTC)", kind="datetime"), FilterField("until", "Until (UTC)", kind="datetime"))

AUDIT_FILTERS = FilterBar(*_SHARED, FilterField("tenant", "Tenant", kind="select"), *_WINDOW)
PLATFORM_AUDIT_FILTERS = FilterBar(FilterField("workspace", "Workspace", kind="select"), *_SHARED, *_WINDOW)


def audit_filters(parsed: ParsedFilters, *, privileged_only: bool) -> AuditFilters | None:
    """The service's filters from a parsed bar, or None when the bar has errors."""
    check_window(parsed)
    if not parsed.ok:
        return None
    v = parsed.values
    return AuditFilters(actor=v.get("actor"), action=v.get("action"), ref_type=v.get("ref_type"),
                        ref_id=v.get("ref_id"), tenant_id=int(v["tenant"]) if v.get("tenant") else None,
                        since=v.get("since"), until=v.get("until"), privileged_only=privileged_only)
