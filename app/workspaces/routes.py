"""Workspace admin: members, their roles and tenant limits, and tenants."""

from flask import flash, request, url_for

from app.auth.guards import console_required, current_actor
from app.errors import NotAllowed, ValidationFailed
from app.htmx import notice, redirect_to, render
from app.workspaces import bp, service
from app.workspaces.forms import AddMemberForm, MemberForm, TenantForm
from app.workspaces.roles import ROLES


def _tenant_choices(actor):
    return {t.id: t.name for t in service.list_tenants(actor=actor)}


def _members_page(add_form=None, status=200):
    actor = current_actor()
    q = request.args.get("q", "").strip()[:100] or None
    role = request.args.get("role") if request.args.get("role") in ROLES else None
    page = service.list_members(actor=actor, q=q, role=role, after=request.args.get("after") or None)
    choices = _tenant_choices(actor)
    if add_form is None:
        add_form = AddMemberForm()
    add_form.tenant_ids.choices = choices
    return render("workspaces/members.html", block="results", status=status, page=page, q=q or "", role=role,
                  push_url=url_for("workspaces.members", q=q, role=role),
                  add_form=add_form, tenant_choices=choices, roles=ROLES)


@bp.get("/workspace/members")
@console_required("members.view")
def members():
    return _members_page()


@bp.post("/workspace/members")
@console_required("members.manage")
def add_member():
    form = AddMemberForm()
    form.tenant_ids.choices = _tenant_choices(current_actor())
    if form.validate_on_submit():
        try:
            membership = service.add_member(actor=current_actor(), email=form.email.data, name=form.name.data,
                                            role=form.role.data, tenant_ids=form.tenant_ids.data or [],
                                            password=form.password.data)
        except ValidationFailed as problem:
            for field, message in problem.fields.items():
                getattr(form, field, form.email).errors.append(message)
            form.form_errors.append(problem.message)
        else:
            flash(f"{membership.user.email} is now a member ({ROLES[membership.role]}).", "success")
            return redirect_to(url_for("workspaces.members"))
    return _members_page(add_form=form, status=422)


@bp.post("/workspace/members/<int:membership_id>")
@console_required("members.manage")
def change_member(membership_id: int):
    form = MemberForm()
    form.tenant_ids.choices = _tenant_choices(current_actor())
    if not form.validate():
        raise ValidationFailed("Choose a role.", fields={k: "; ".join(v) for k, v in form.errors.items()})
    membership = service.change_member(actor=current_actor(), membership_id=membership_id, role=form.role.data,
                                       tenant_ids=form.tenant_ids.data or [])
    flash(f"Saved {membership.user.email}: {ROLES[membership.role]}.", "success")
    return redirect_to(url_for("workspaces.members", q=request.args.get("q") or None))


@bp.post("/workspace/members/<int:membership_id>/remove")
@console_required("members.manage")
def remove_member(membership_id: int):
    service.remove_member(actor=current_actor(), membership_id=membership_id)
    flash("The member was removed from this workspace.", "success")
    return redirect_to(url_for("workspaces.members"))


@bp.route("/workspace/tenants", methods=["GET", "POST"])
@console_required("members.view")
def tenants():
    actor = current_actor()
    form = TenantForm()
    status = 200
    if request.method == "POST":
        if not actor.can("tenants.manage"):
            raise NotAllowed("Only workspace admins add tenants.")
        if form.validate_on_submit():
            try:
                tenant = service.create_tenant(actor=actor, slug=form.slug.data, name=form.name.data)
            except ValidationFailed as problem:
                for field, message in problem.fields.items():
                    getattr(form, field).errors.append(message)
                status = 422
            else:
                flash(f"Tenant {tenant.name} added.", "success")
                return redirect_to(url_for("workspaces.tenants"))
        else:
            status = 422
    return render("workspaces/tenants.html", status=status, tenants=service.list_tenants(actor=actor), form=form)


@bp.route("/workspace/channels", methods=["GET", "POST"])
@console_required("settings.manage")
def channels():
    """Where each recipient group's communications go (SMTP e-mail or a signed webhook)."""
    from app.communications import service as communications
    from app.communications.models import CHANNEL_KINDS
    from app.incidents.vocabulary import RECIPIENT_GROUPS

    actor = current_actor()
    errors, message, status, values = {}, None, 200, {}
    if request.method == "POST":
        form = request.form
        values = dict(form)
        port = form.get("smtp_port", "").strip()
        try:
            communications.save_channel(
                actor=actor, recipients=form.get("recipients", ""), kind=form.get("kind", ""),
                smtp_host=form.get("smtp_host", "").strip() or None, smtp_port=int(port) if port.isdigit() else None,
                from_address=form.get("from_address", "").strip() or None,
                to_addresses=form.get("to_addresses", "").replace(";", ",").split(","),
                webhook_url=form.get("webhook_url", "").strip() or None)
        except ValidationFailed as problem:
            errors, message, status = problem.fields, problem.message, 422
        else:
            flash("Channel saved.", "success")
            return redirect_to(url_for("workspaces.channels"))
    return render("workspaces/channels.html", status=status, channels=communications.list_channels(actor=actor),
                  groups=RECIPIENT_GROUPS, kinds=CHANNEL_KINDS, errors=errors, message=message, values=values)


def _alert_rules_page(*, status: int = 200, errors: dict | None = None, message: str | None = None,
                      values: dict | None = None, created=None):
    from app.alerting import service as alerting

    return render("workspaces/alert_rules.html", block="rules", status=status,
                  rules=alerting.list_rules(actor=current_actor()), event_types=alerting.EVENT_TYPES,
                  channels=alerting.CHANNEL_LABELS, roles=ROLES, target=alerting.rule_target,
                  errors=errors or {}, message=message, values=values or {}, created=created)


@bp.route("/workspace/alert-rules", methods=["GET", "POST"])
@console_required("alert_rules.manage")
def alert_rules():
    """Where operations events (a failed runbook run, …) go: in-app, e-mail or a signed webhook."""
    from app.alerting import service as alerting

    if request.method == "GET":
        return _alert_rules_page()
    form = request.form
    channel, port = form.get("channel", ""), form.get("smtp_port", "").strip()
    smtp_port = None
    if port and channel == "email":
        smtp_port = int(port) if port.isdigit() and len(port) <= 5 else -1  # -1: refused as a bad port
    try:
        rule = alerting.save_rule(
            actor=current_actor(), event_type=form.get("event_type", ""), channel=channel,
            audience_role=form.get("audience_role") or None, smtp_host=form.get("smtp_host"), smtp_port=smtp_port,
            from_address=form.get("from_address"), to_addresses=form.get("to_addresses", "").replace(";", ",").split(","),
            webhook_url=form.get("webhook_url"))
    except ValidationFailed as problem:
        return _alert_rules_page(status=422, errors=problem.fields, message=problem.message, values=dict(form))
    if rule.signing_secret:
        # the one time the secret is shown: on this answer, never through a redirect or the session
        notice("Alert rule added.", "success")
        return _alert_rules_page(created=rule)
    flash("Alert rule added.", "success")
    return redirect_to(url_for("workspaces.alert_rules"))


@bp.post("/workspace/alert-rules/<int:rule_id>/delete")
@console_required("alert_rules.manage")
def delete_alert_rule(rule_id: int):
    from app.alerting import service as alerting

    alerting.delete_rule(actor=current_actor(), rule_id=rule_id)
    flash("Alert rule deleted.", "success")
    return redirect_to(url_for("workspaces.alert_rules"))
