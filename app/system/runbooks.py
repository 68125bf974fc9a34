"""/system runbooks: the catalog, preflight → confirm → start, a run's live progress, the runs list."""

from __future__ import annotations

from flask import abort, flash, request, url_for
from sqlalchemy import select

from app.auth.guards import current_actor, system_required
from app.errors import ValidationFailed
from app.extensions import db
from app.filters import FilterBar, FilterField
from app.htmx import redirect_to, render
from app.paging import cursor_arg
from app.runbooks import service
from app.runbooks.catalog import ALL_TENANTS, RUNBOOKS, SCOPE_LABELS, SINGLE_TENANT
from app.runbooks.models import RUN_OUTCOMES, RUN_STATUSES
from app.system import bp
from app.system.service import workspace_choices
from app.workspaces.models import Tenant, Workspace

RUN_FILTERS = FilterBar(
    FilterField("runbook", "Runbook", kind="select",
                choices={"": "Any runbook", **{key: r.label for key, r in RUNBOOKS.items()}}),
    FilterField("workspace", "Workspace", kind="select"),
    FilterField("status", "Status", kind="select", choices={"": "Any status", **{s: s for s in RUN_STATUSES}}),
    FilterField("outcome", "Outcome", kind="select",
                choices={"": "Any outcome", **{o: o.replace("_", " ") for o in RUN_OUTCOMES}}),
    FilterField("source", "Source", kind="select",
                choices={"": "Any source", **{s: s.replace("_", " ") for s in service.SOURCES}}),
    FilterField("since", "Since (UTC)", kind="datetime"),
)


def _tenants_by_workspace() -> list[tuple[Workspace, list[Tenant]]]:
    workspaces = db.session.scalars(select(Workspace).order_by(Workspace.name)).all()
    by_workspace: dict[int, list[Tenant]] = {}
    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.name)):
        by_workspace.setdefault(tenant.workspace_id, []).append(tenant)
    return [(w, by_workspace.get(w.id, [])) for w in workspaces]


def _catalog(*, status: int = 200, chosen: str | None = None, errors: dict | None = None, message: str | None = None):
    actor = current_actor()
    return render("system/runbooks/index.html", status=status, area="system", runbooks=service.runbooks_for(actor),
                  all_runbooks=list(RUNBOOKS.values()), targets=_tenants_by_workspace(),
                  active=service.active_runs(), scope_labels=SCOPE_LABELS, chosen=chosen, errors=errors or {},
                  message=message, form=request.form)


@bp.get("/runbooks")
@system_required("system.runbooks.view")
def runbooks():
    return _catalog()


def _target_from_form(runbook):
    scope = request.form.get("scope", "")
    if scope not in (SINGLE_TENANT, ALL_TENANTS):
        raise ValidationFailed("Choose one tenant or all tenants.", fields={"scope": "choose one tenant or all tenants"})
    return service.resolve_target(runbook=runbook, workspace=request.form.get("workspace") or None,
                                  tenant=request.form.get("tenant") or None if scope == SINGLE_TENANT else None,
                                  all_tenants=scope == ALL_TENANTS)


def _runbook_or_404(key: str):
    runbook = RUNBOOKS.get(key)
    if runbook is None:
        abort(404)
    return runbook


@bp.post("/runbooks/<key>/preflight")
@system_required("system.runbooks.run")
def preflight(key: str):
    runbook = _runbook_or_404(key)
    try:
        target = _target_from_form(runbook)
        found = service.preflight(actor=current_actor(), runbook=runbook, target=target, source="system_ui")
    except ValidationFailed as problem:
        db.session.rollback()
        return _catalog(status=422, chosen=key, errors=problem.fields, message=problem.message)
    return _confirm(found)


def _confirm(found, *, status: int = 200, errors: dict | None = None, message: str | None = None):
    actor = current_actor()
    return render("system/runbooks/confirm.html", status=status, area="system", preflight=found,
                  runbook=found.runbook, target=found.target, reason_codes=service.REASON_CODES,
                  reason_required=found.target.scope == ALL_TENANTS or actor.is_break_glass,
                  errors=errors or {}, message=message, form=request.form, scope_labels=SCOPE_LABELS,
                  text_limits=(service.REASON_TEXT_MIN, service.REASON_TEXT_MAX))


@bp.post("/runbooks/<key>/start")
@system_required("system.runbooks.run")
def start(key: str):
    runbook = _runbook_or_404(key)
    try:
        target = _target_from_form(runbook)
        confirmed = service.preflight_from_token(runbook=runbook, target=target, token=request.form.get("preflight", ""))
    except ValidationFailed as problem:
        db.session.rollback()
        return _catalog(status=422, chosen=key, errors=problem.fields, message=problem.message)
    try:
        started = service.start(actor=current_actor(), preflight=confirmed, source="system_ui",
                                reason_code=request.form.get("reason_code"),
                                reason_text=request.form.get("reason_text"),
                                confirmation=request.form.get("confirmation"))
    except ValidationFailed as problem:
        db.session.rollback()
        return _confirm(confirmed, status=422, errors=problem.fields, message=problem.message)
    if started.created:
        flash(f"Run #{started.run.id} started.", "success")
    else:
        flash(f"Run #{started.run.id} of this runbook and scope was already active; here it is.", "warning")
    return redirect_to(url_for("system.run", run_id=started.run.id))


@bp.get("/runs/<int:run_id>")
@system_required("system.runbooks.view")
def run(run_id: int):
    view = service.run_view(run_id)
    return render("system/runbooks/run.html", block="progress", area="system", view=view,
                  audit_url=url_for("system.audit", workspace=view.run.workspace_id, ref_type="operation_run",
                                    ref_id=view.run.id))


@bp.post("/runs/<int:run_id>/cancel")
@system_required("system.runbooks.run")
def cancel_run(run_id: int):
    try:
        service.request_cancel(actor=current_actor(), run_id=run_id)
    except ValidationFailed as problem:
        db.session.rollback()
        flash(problem.message, "warning")
    else:
        flash(f"Run #{run_id} will stop after the chunk in progress.", "success")
    return redirect_to(url_for("system.run", run_id=run_id))


@bp.get("/runs")
@system_required("system.runbooks.view")
def runs():
    parsed = RUN_FILTERS.parse(request.args, choices={"workspace": {"": "All workspaces", **workspace_choices()}})
    page, status, args = None, 200, {}
    if not parsed.ok:
        status = 400
    else:
        v = parsed.values
        filters = service.RunFilters(runbook=v.get("runbook"), status=v.get("status"), outcome=v.get("outcome"),
                                     source=v.get("source"), since=v.get("since"),
                                     workspace_id=int(v["workspace"]) if v.get("workspace") else None)
        page = service.list_runs(filters=filters, before=cursor_arg("before"), after=cursor_arg("after"))
        args = parsed.query_args()
    names = dict(db.session.execute(select(Workspace.id, Workspace.name)).all())
    return render("system/runbooks/runs.html", block="results", status=status, push_url=url_for("system.runs", **args),
                  bar=RUN_FILTERS, parsed=parsed, page=page, endpoint="system.runs", args=args, area="system",
                  workspace_names=names, runbooks=RUNBOOKS)
