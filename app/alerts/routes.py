"""In-app alerts: the list for your role, and marking them read."""

from __future__ import annotations

from flask import flash, request, url_for

from app.alerts import bp, service
from app.auth.guards import console_required, current_actor
from app.htmx import redirect_to, render
from app.paging import cursor_arg


@bp.get("/alerts")
@console_required("alerts.view")
def index():
    alerts, older = service.list_alerts(actor=current_actor(), before=cursor_arg("before"))
    return render("alerts/index.html", alerts=alerts, older=older)


@bp.get("/alerts/count")
@console_required("alerts.view")
def count():
    unread = service.unread_count(actor=current_actor())
    return (str(unread) if unread else ""), 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.post("/alerts/read")
@console_required("alerts.view")
def mark_read():
    raw = request.form.get("alert_id", "")
    count = service.mark_read(actor=current_actor(), alert_id=int(raw) if raw.isdigit() else None)
    flash(f"{count} alert{'s' if count != 1 else ''} marked read.", "success")
    return redirect_to(url_for("alerts.index"))
