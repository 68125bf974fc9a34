"""/system/deliveries: alert deliveries across workspaces, filtered and paged, and retrying failed ones."""

from __future__ import annotations

from flask import flash, request, url_for

from app.alerting import service as alerting
from app.auth.guards import current_actor, system_required
from app.filters import FilterBar, FilterField
from app.htmx import redirect_to, render, safe_next
from app.paging import cursor_arg
from app.system import bp
from app.system.service import workspace_choices

DELIVERY_FILTERS = FilterBar(
    FilterField("workspace", "Workspace", kind="select"),
    FilterField("status", "Status", kind="select", choices={"": "Any status", **alerting.STATUS_LABELS}),
    FilterField("channel", "Channel", kind="select", choices={"": "Any channel", **alerting.CHANNEL_LABELS}),
    FilterField("event_type", "Event", kind="select", choices={"": "Any event", **alerting.EVENT_TYPES}),
)


@bp.get("/deliveries")
@system_required("system.use")
def deliveries():
    parsed = DELIVERY_FILTERS.parse(request.args,
                                    choices={"workspace": {"": "All workspaces", **workspace_choices()}})
    page, status, args = None, 200, {}
    if not parsed.ok:
        status = 400
    else:
        v = parsed.values
        filters = alerting.DeliveryFilters(workspace_id=int(v["workspace"]) if v.get("workspace") else None,
                                           status=v.get("status"), channel=v.get("channel"),
                                           event_type=v.get("event_type"))
        page = alerting.list_deliveries(actor=current_actor(), filters=filters, before=cursor_arg("before"),
                                        after=cursor_arg("after"))
        args = parsed.query_args()
    return render("system/deliveries.html", block="results", status=status,
                  push_url=url_for("system.deliveries", **args), bar=DELIVERY_FILTERS, parsed=parsed, page=page,
                  endpoint="system.deliveries", args=args, channels=alerting.CHANNEL_LABELS,
                  event_types=alerting.EVENT_TYPES, area="system")


@bp.post("/deliveries/<int:delivery_id>/retry")
@system_required("system.jobs.manage")
def retry_delivery(delivery_id: int):
    alerting.retry_delivery(actor=current_actor(), delivery_id=delivery_id)
    flash(f"Delivery #{delivery_id} is queued again.", "success")
    return redirect_to(safe_next(request.form.get("next"), url_for("system.deliveries")))
