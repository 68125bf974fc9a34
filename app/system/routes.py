"""/system: sign-in for platform users, the start page, break-glass and the platform audit views."""

from __future__ import annotations

from datetime import UTC

from flask import flash, request, session, url_for
from flask_login import current_user, logout_user

from app.audit import service as audit_service
from app.audit.forms import PLATFORM_AUDIT_FILTERS, audit_filters
from app.audit.routes import csv_response
from app.auth import service as auth_service
from app.auth.guards import client_ip, current_actor, system_required
from app.auth.routes import sign_in_view
from app.errors import ValidationFailed
from app.extensions import db
from app.htmx import redirect_to, render
from app.paging import cursor_arg
from app.system import bp
from app.system.forms import BreakGlassForm
from app.system.service import overview, workspace_choices

SYSTEM_ENDPOINTS = dict(all_endpoint="system.audit", privileged_endpoint="system.audit_privileged",
                        export_endpoint="system.audit_export")


@bp.route("/login", methods=["GET", "POST"])
def login():
    return sign_in_view(sign_in=auth_service.sign_in_platform, realm="system", home=url_for("system.home"),
                        already_signed_in=current_user.is_authenticated and current_user.is_platform)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated and current_user.is_platform:
        auth_service.sign_out(person=current_user, ip=client_ip(), user_agent=request.headers.get("User-Agent"))
    logout_user()
    session.clear()
    flash("You are signed out of /system.", "success")
    return redirect_to(url_for("system.login"))


@bp.get("/")
@system_required()
def home():
    return render("system/home.html", overview=overview(actor=current_actor()), form=BreakGlassForm(),
                  area="system")


@bp.post("/break-glass")
@system_required("system.break_glass")
def start_break_glass():
    form = BreakGlassForm()
    if form.validate_on_submit():
        try:
            grant = auth_service.start_break_glass(actor=current_actor(), reason=form.reason.data,
                                                   minutes=form.minutes.data)
        except ValidationFailed as problem:
            form.form_errors.append(problem.message)
        else:
            flash(f"Elevated until {grant.expires_at.astimezone(UTC):%H:%M} UTC. Every action is audited.", "warning")
            return redirect_to(url_for("system.home"))
    return render("system/home.html", status=422, overview=overview(actor=current_actor()), form=form,
                  area="system")


@bp.post("/break-glass/end")
@system_required()
def end_break_glass():
    ended = auth_service.end_break_glass(actor=current_actor())
    flash("Elevation ended." if ended else "No elevation was active.", "success")
    return redirect_to(url_for("system.home"))


def _platform_filters(privileged_only: bool):
    choices = {"workspace": {"": "All chains", "platform": "Platform (no workspace)", **workspace_choices()}}
    parsed = PLATFORM_AUDIT_FILTERS.parse(request.args, choices=choices)
    return parsed, audit_filters(parsed, privileged_only=privileged_only), parsed.values.get("workspace")


def _platform_view(*, privileged_only: bool, endpoint: str, title: str):
    parsed, filters, workspace = _platform_filters(privileged_only)
    page, status, args = None, 200, {}
    if filters is None:
        status = 400
    else:
        page = audit_service.list_events(actor=current_actor(), filters=filters, platform_view=True,
                                         workspace=workspace, before=cursor_arg("before"), after=cursor_arg("after"))
        args = parsed.query_args()
    return render("audit/index.html", block="results", status=status, push_url=url_for(endpoint, **args),
                  bar=PLATFORM_AUDIT_FILTERS, parsed=parsed, page=page, title=title,
                  endpoint=endpoint, privileged_only=privileged_only, tenant_names={}, args=args,
                  area="system", **SYSTEM_ENDPOINTS)


@bp.get("/audit")
@system_required("system.audit.view")
def audit():
    return _platform_view(privileged_only=False, endpoint="system.audit", title="Platform audit trail")


@bp.get("/audit/privileged")
@system_required("system.audit.view")
def audit_privileged():
    return _platform_view(privileged_only=True, endpoint="system.audit_privileged", title="Privileged changes")


@bp.get("/audit/export.csv")
@system_required("system.audit.view")
def audit_export():
    privileged_only = request.args.get("privileged") == "1"
    _, filters, workspace = _platform_filters(privileged_only)
    if filters is None:
        return _platform_view(privileged_only=privileged_only, endpoint="system.audit", title="Platform audit trail")
    actor = current_actor()
    audit_service.record(actor=actor, action="read", ref_type="audit_export",
                 context={"format": "csv", "filters": filters.as_query_args(), "workspace": workspace})
    db.session.commit()
    return csv_response(actor=actor, filters=filters, tenant_names={}, platform_view=True,
                        workspace=workspace, filename="platform-audit-events.csv")
