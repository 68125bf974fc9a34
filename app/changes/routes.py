"""The change requests page: raise, approve or reject (never your own), filter and page."""

from __future__ import annotations

import uuid

from flask import flash, request, url_for
from flask_login import current_user

from app.auth.guards import console_required, current_actor
from app.changes import bp, service
from app.changes.models import APPROVALS, RISKS
from app.errors import ValidationFailed
from app.htmx import redirect_to, render
from app.paging import cursor_arg


def _page(values=None, errors=None, message=None, status=200):
    approval = request.args.get("approval") if request.args.get("approval") in APPROVALS else None
    page = service.list_changes(actor=current_actor(), approval=approval, before=cursor_arg("before"))
    tenants = {str(tid): name for tid, _, name in current_user.visible_tenants}
    return render("changes/index.html", block="results", status=status, page=page, approval=approval,
                  approvals=APPROVALS, risks=RISKS, tenants=tenants, values=values or {}, errors=errors or {},
                  message=message, tenant_names={int(k): v for k, v in tenants.items()},
                  push_url=url_for("changes.index", approval=approval))


@bp.get("/changes")
@console_required("changes.view")
def index():
    return _page()


@bp.post("/changes")
@console_required("changes.create")
def create():
    form = request.form
    try:
        change = service.create_change(actor=current_actor(), tenant=int(form["tenant"]) if form.get("tenant", "").isdigit()
                                       else None, summary=form.get("summary", ""), risk=form.get("risk", ""),
                                       description=form.get("description", ""),
                                       rollback_plan=form.get("rollback_plan", ""))
    except ValidationFailed as problem:
        return _page(values=form, errors=problem.fields, message=problem.message, status=422)
    flash(f"{change.reference} raised; it waits for a change manager's approval.", "success")
    return redirect_to(url_for("changes.index"))


@bp.post("/changes/<uuid:change_id>/decision")
@console_required("changes.approve")
def decide(change_id: uuid.UUID):
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        raise ValidationFailed("Approve or reject.", fields={"decision": "approve or reject"})
    change = service.decide(actor=current_actor(), change_id=change_id, approve=decision == "approve",
                            note=request.form.get("note", ""))
    flash(f"{change.reference} {change.approval_status}.", "success")
    return redirect_to(url_for("changes.index"))
