"""The Reviews page: post-incident reviews and open action items across incidents."""

from __future__ import annotations

import uuid

from flask import flash, request, url_for

from app.auth.guards import console_required, current_actor
from app.htmx import redirect_to, render
from app.reviews import bp, service
from app.reviews.models import ACTION_STATES, PIR_STATES


@bp.get("/reviews")
@console_required("reviews.view")
def index():
    status = request.args.get("status") if request.args.get("status") in PIR_STATES else None
    owner = (request.args.get("owner") or "").strip()[:255] or None
    overdue = request.args.get("overdue") == "1"
    page = service.overview(actor=current_actor(), review_status=status, owner=owner, overdue_only=overdue)
    return render("reviews/index.html", block="results", page=page, status=status, owner=owner or "", overdue=overdue,
                  pir_states=PIR_STATES, action_states=ACTION_STATES,
                  push_url=url_for("reviews.index", status=status, owner=owner, overdue="1" if overdue else None))


@bp.post("/reviews/items/<uuid:item_id>/status")
@console_required("reviews.view")
def set_item_status(item_id: uuid.UUID):
    item = service.set_action_item_status(actor=current_actor(), item_id=item_id, status=request.form.get("status", ""))
    flash(f"Action item marked {item.status.replace('_', ' ')}.", "success")
    return redirect_to(request.form.get("next") if (request.form.get("next") or "").startswith("/reviews")
                       else url_for("reviews.index"))
