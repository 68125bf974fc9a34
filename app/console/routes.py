from flask import flash, request, url_for
from flask_login import current_user

from app.auth import sessions
from app.auth.guards import console_required, current_actor
from app.console import bp
from app.console.service import overview
from app.errors import BadRequest
from app.htmx import redirect_to, referrer_path, render, safe_next


@bp.get("/")
@console_required()
def home():
    return render("console/home.html", overview=overview(actor=current_actor()))


@bp.post("/switch")
@console_required()
def switch():
    try:
        workspace_id = int(request.form.get("workspace_id", ""))
        raw_tenant = request.form.get("tenant_id", "")
        tenant_id = int(raw_tenant) if raw_tenant else None
    except ValueError:
        raise BadRequest("Choose a workspace and tenant from the lists.") from None
    changed_workspace = workspace_id != current_user.workspace_id
    sessions.switch_context(person=current_user, workspace_id=workspace_id,
                                tenant_id=None if changed_workspace else tenant_id)
    flash("Switched workspace." if changed_workspace else "Switched tenant.", "success")
    # a page of another workspace means nothing in the new one: start over at home; a tenant
    # switch goes back to the page it was made on (the switcher names no page: it is made once)
    return redirect_to(url_for("console.home") if changed_workspace
                       else safe_next(request.form.get("next") or referrer_path(), url_for("console.home")))
