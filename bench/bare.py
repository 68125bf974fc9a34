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
