"""Incident jobs: the SLA breach scan, every minute on RQ's scheduler."""

from __future__ import annotations

from app.incidents import sla
from jobs.context import with_app_context
from jobs.schedule import periodic


@with_app_context
@periodic(name="sla-scan", every_seconds=60, queue="urgent")
def scan_sla_breaches() -> dict:
    """Flag new SLA breaches and act on each once (safe to run on several workers at once)."""
    result = sla.scan_breaches()
    return {"acknowledge_breaches": result.acknowledge_breaches, "resolve_breaches": result.resolve_breaches,
            "escalated": result.escalated}
