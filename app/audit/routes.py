"""Audit views: the filtered trail, the privileged-changes view, and CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC

from flask import Response, current_app, request
from flask_login import current_user

from app.audit import bp, service
from app.audit.forms import AUDIT_FILTERS, audit_filters
from app.auth.guards import console_required, current_actor
from app.extensions import db
from app.htmx import render
from app.paging import cursor_arg
from app.templating import cached_url_for
from app.tenancy import apply_scope

CONSOLE_ENDPOINTS = dict(all_endpoint="audit.index", privileged_endpoint="audit.privileged",
                         export_endpoint="audit.export")
CSV_COLUMNS = ["id", "occurred_at", "action", "ref_type", "ref_id", "actor_type", "actor_label", "tenant",
               "field_deltas", "context", "ip", "user_agent", "privileged", "chain_seq", "row_hash"]


def parse_filters(args, tenant_choices: dict[str, str], *, privileged_only: bool = False):
    """(parsed filter bar, service filters or None when the query string is not valid)."""
    parsed = AUDIT_FILTERS.parse(args, choices={"tenant": tenant_choices})
    return parsed, audit_filters(parsed, privileged_only=privileged_only)


def _tenant_names() -> dict[int, str]:
    """The tenants in the caller's view, from the signed-in session (no extra query)."""
    return current_user.tenant_names


def _view(*, privileged_only: bool, endpoint: str, title: str):
    actor = current_actor()
    tenant_names = _tenant_names()
    parsed, filters = parse_filters(request.args, current_user.tenant_choices("Any tenant"),
                                   privileged_only=privileged_only)
    page, status = None, 200
    if filters is None:
        status = 400
    else:
        page = service.list_events(actor=actor, filters=filters, before=cursor_arg("before"), after=cursor_arg("after"))
    args = parsed.query_args() if filters else {}
    return render("audit/index.html", block="results", status=status, push_url=cached_url_for(endpoint, **args),
                  bar=AUDIT_FILTERS, parsed=parsed, page=page, title=title, endpoint=endpoint, privileged_only=privileged_only,
                  tenant_names=tenant_names, args=args, **CONSOLE_ENDPOINTS)


@bp.get("/audit")
@console_required("audit.view")
def index():
    return _view(privileged_only=False, endpoint="audit.index", title="Audit trail")


@bp.get("/audit/privileged")
@console_required("audit.view")
def privileged():
    return _view(privileged_only=True, endpoint="audit.privileged", title="Privileged changes")


def csv_response(*, actor, filters, tenant_names: dict[int, str], platform_view: bool, filename: str,
                 workspace: str | None = None) -> Response:
    app = current_app._get_current_object()

    def rows():
        # the request's context is gone while the body streams: open one, with the same scope
        with app.app_context():
            apply_scope(db.session, actor.scope)
            yield from write_rows()

    def write_rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for event in service.iter_events(actor=actor, filters=filters, platform_view=platform_view,
                                          workspace=workspace):
            writer.writerow([
                event.id, event.occurred_at.astimezone(UTC).isoformat(), event.action, event.ref_type,
                event.ref_id or "", event.actor_type, event.actor_label,
                tenant_names.get(event.tenant_id, event.tenant_id or ""),
                json.dumps(event.field_deltas, sort_keys=True), json.dumps(event.context, sort_keys=True),
                event.ip or "", event.user_agent or "", "yes" if event.is_privileged else "no", event.chain_seq,
                event.row_hash])
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(rows(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/audit/export.csv")
@console_required("audit.export")
def export():
    actor = current_actor()
    tenant_names = _tenant_names()
    privileged_only = request.args.get("privileged") == "1"
    parsed, filters = parse_filters(request.args, current_user.tenant_choices("Any tenant"),
                                   privileged_only=privileged_only)
    if filters is None:
        return render("audit/index.html", status=400, bar=AUDIT_FILTERS, parsed=parsed, page=None,
                      title="Audit trail",
                      endpoint="audit.index", privileged_only=privileged_only, tenant_names={},
                      args={}, **CONSOLE_ENDPOINTS)
    service.record(actor=actor, action="read", ref_type="audit_export", ref_id=None,
                   context={"format": "csv", "filters": filters.as_query_args(), "privileged_only": privileged_only})
    db.session.commit()
    return csv_response(actor=actor, filters=filters, tenant_names=tenant_names,
                        platform_view=False, filename="audit-events.csv")
