"""The baseline of the spec's performance bars: a bare Flask route that renders the same 50 rows
from one keyset query on the same table. "The same rows" means the same row markup: the route
includes the list's own row template, so the comparison isolates everything else a real page
does (session, scoping, filters, layout). Only the benchmark application registers it."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("bench_bare", __name__, url_prefix="/bench")

AUDIT_PAGE = text("""
SELECT id, occurred_at, action, ref_type, ref_id, actor_type, actor_label, workspace_id, tenant_id, field_deltas,
       context, ip, is_privileged
FROM audit_events
WHERE workspace_id = :workspace_id AND action = :action AND id < :before
ORDER BY id DESC LIMIT 50
""")

# a page with nothing around the table; the included template is compiled once and cached
AUDIT_ROWS = """<!doctype html><html><body>{% include "audit/_table.html" %}</body></html>"""


@bp.get("/bare/audit")
def bare_audit():
    rows = db.session.execute(AUDIT_PAGE, {
        "workspace_id": int(request.args["workspace_id"]), "action": request.args.get("action", "update"),
        "before": int(request.args.get("before", 2**62))}).all()
    template = current_app.extensions.get("bench_audit_rows")
    if template is None:
        template = current_app.extensions["bench_audit_rows"] = current_app.jinja_env.from_string(AUDIT_ROWS)
    return template.render(events=rows, compact=False, tenant_names={})


INCIDENT_PAGE = text("""
SELECT id, number, title, severity, priority, status, category, assigned_team, assignee, tenant_id, labels,
       created_at, updated_at, acknowledge_due_at, resolve_due_at, acknowledge_breached, resolve_breached,
       sla_paused_at, is_simulation, trigger_source
FROM incidents
WHERE workspace_id = :workspace_id AND severity = :severity
  AND status IN ('open', 'investigating', 'escalated', 'pending_vendor', 'mitigated')
ORDER BY created_at DESC, id DESC LIMIT 50
""")
INCIDENT_ROWS = """<!doctype html><html><body>{% include "incidents/_table.html" %}</body></html>"""


@bp.get("/bare/incidents")
def bare_incidents():
    """The board's 50 rows (active, one severity, newest first) from one keyset query, same row markup."""
    from datetime import UTC, datetime

    from app.incidents.routes import VOCABULARY

    rows = db.session.execute(INCIDENT_PAGE, {"workspace_id": int(request.args["workspace_id"]),
                                              "severity": request.args.get("severity", "p2")}).all()
    template = current_app.extensions.get("bench_incident_rows")
    if template is None:
        template = current_app.extensions["bench_incident_rows"] = current_app.jinja_env.from_string(INCIDENT_ROWS)
    page = type("Page", (), {"rows": rows})
    return template.render(page=page, tenant_names={}, now=datetime.now(UTC), **VOCABULARY)
