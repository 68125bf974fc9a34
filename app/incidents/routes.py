"""The board, the incident page and its SOP forms, new incidents, drills, the SLA breach report."""

from __future__ import annotations

import csv
import io
import uuid

from flask import Response, make_response, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth.guards import console_required, current_actor
from app.changes.models import ChangeRequest, IncidentChangeLink
from app.changes.service import approved_for_tenant
from app.communications.models import TEMPLATES, Communication
from app.communications.service import compose
from app.error_pages import error_response
from app.errors import DomainError, ValidationFailed
from app.extensions import db
from app.filters import FilterBar, FilterField, ParsedFilters, check_window
from app.htmx import notice, redirect_to, render, retarget, wants_fragment
from app.incidents import bp, queries, service, timeline
from app.incidents.actions import ACTIONS, allowed_actions
from app.incidents.models import Incident, VendorEngagement
from app.incidents.vocabulary import (
    CATEGORIES,
    CONTACT_METHODS,
    DETECTION_SOURCES,
    ESCALATION_TARGETS,
    PRIORITIES,
    RECIPIENT_GROUPS,
    SEVERITIES,
    STATUSES,
    TEAMS,
    TOOLS,
)
from app.reviews import service as reviews

BOARD_FILTERS = FilterBar(
    FilterField("q", "Search", max_length=200, placeholder="INC-1042, words of the title, service, label",
                search=True, size=34),
    FilterField("status", "Status", kind="select",
                choices={"active": "Active (not resolved)", "all": "Any status", **STATUSES}),
    FilterField("severity", "Severity", kind="select", choices={"": "Any severity", **SEVERITIES}),
    FilterField("priority", "Priority", kind="select", choices={"": "Any priority", **PRIORITIES}),
    FilterField("team", "Team", kind="select", choices={"": "Any team", **TEAMS}),
    FilterField("tenant", "Tenant", kind="select"),
    FilterField("assignee", "Assignee", max_length=255, size=14),
    FilterField("label", "Label", max_length=60, size=12),
    FilterField("breached", "SLA", kind="select", choices={"": "Any", "yes": "Breached", "no": "Within SLA"}),
    FilterField("sort", "Sort", kind="select", choices=queries.SORT_LABELS),
    FilterField("view", "View", kind="select", choices={"table": "Table", "columns": "Columns by status"}),
)
REPORT_FILTERS = FilterBar(
    FilterField("severity", "Severity", kind="select", choices={"": "Any severity", **SEVERITIES}),
    FilterField("tenant", "Tenant", kind="select"),
    FilterField("team", "Team", kind="select", choices={"": "Any team", **TEAMS}),
    FilterField("since", "Breached from (UTC)", kind="datetime"),
    FilterField("until", "Breached until (UTC)", kind="datetime"),
)
DONE = {"acknowledge": "acknowledged", "assign": "assigned", "categorize": "categorised", "prioritize": "prioritised",
        "diagnose": "diagnosis recorded", "escalate": "escalated", "engage_vendor": "vendor engaged",
        "link_change": "change linked", "mitigate": "mitigated", "resolve": "resolved", "communicate": "message sent",
        "close": "closed", "reopen": "reopened", "log": "details logged", "note": "note added",
        "tool_use": "tool action recorded"}
VOCABULARY = dict(severities=SEVERITIES, priorities=PRIORITIES, statuses=STATUSES, teams=TEAMS,
                  categories=CATEGORIES, contact_methods=CONTACT_METHODS, escalation_targets=ESCALATION_TARGETS,
                  recipient_groups=RECIPIENT_GROUPS, tools=TOOLS, detection_sources=DETECTION_SOURCES,
                  templates=TEMPLATES)


def _tenant_choices(empty: str = "Any tenant") -> dict[str, str]:
    return current_user.tenant_choices(empty)


def _tenant_names() -> dict[int, str]:
    return current_user.tenant_names


def board_filters(parsed: ParsedFilters) -> queries.IncidentFilters:
    v = parsed.values
    status = v.get("status") or "active"
    return queries.IncidentFilters(
        status=None if status in ("active", "all") else status, active_only=status == "active",
        severity=v.get("severity"), priority=v.get("priority"), team=v.get("team"), assignee=v.get("assignee"),
        tenant_id=int(v["tenant"]) if v.get("tenant") else None, label=(v.get("label") or "").lower() or None,
        breached={"yes": True, "no": False}.get(v.get("breached") or ""), q=v.get("q"))


def _columns(actor, filters: queries.IncidentFilters, sort: str) -> dict[str, list]:
    """The columns view: the first rows of each active status, one query per column, no more."""
    shown = [filters.status] if filters.status else list(s for s in STATUSES if s not in ("resolved", "closed"))
    return {status: queries.list_page(actor=actor, filters=queries.IncidentFilters(**{
        **filters.as_dict(), "status": status, "active_only": False}), sort=sort, limit=25).rows for status in shown}


@bp.get("/incidents")
@console_required("incidents.view")
def board():
    actor = current_actor()
    parsed = BOARD_FILTERS.parse(request.args, choices={"tenant": _tenant_choices()})
    page = counts = columns = None
    status = 200
    filters = board_filters(parsed) if parsed.ok else None
    sort = parsed.values.get("sort") or "newest"
    view = parsed.values.get("view") or "table"
    if filters is None:
        status = 400
    else:
        if view == "columns":
            columns = _columns(actor, filters, sort)
        else:
            page = queries.list_page(actor=actor, filters=filters, sort=sort, cursor=request.args.get("cursor"))
        counts = queries.status_counts(actor=actor, filters=filters)
        if counts is None and page is not None:
            more = page.next_cursor is not None or bool(request.args.get("cursor"))
            counts = [queries.StatusCount(None, len(page.rows), more)]
        if request.headers.get("HX-Trigger-Name") != "poll":
            service.audit_discovery(actor=actor, filters=parsed.query_args())
    args = parsed.query_args()
    return render("incidents/board.html", block="results", status=status,
                  push_url=url_for("incidents.board", **args, **({"cursor": request.args["cursor"]}
                                                                 if request.args.get("cursor") else {})),
                  bar=BOARD_FILTERS, parsed=parsed, page=page, counts=counts, columns=columns, view=view,
                  args=args, tenant_names=_tenant_names(), now=timeline.now(), **VOCABULARY)


@bp.get("/incidents/new")
@console_required("incidents.create")
def new():
    return render("incidents/new.html", values={"severity": "p3"}, errors={}, tenants=_tenant_choices("Choose…"),
                  simulation=request.args.get("simulation") == "1", **VOCABULARY)


@bp.post("/incidents")
@console_required("incidents.create")
def create():
    actor = current_actor()
    form = request.form
    data = {name: form.get(name) for name in ("title", "severity", "description", "category", "subcategory",
                                              "affected_service", "labels", "detection_source")}
    data["tenant"] = int(form["tenant"]) if form.get("tenant", "").isdigit() else None
    simulation = form.get("simulation") == "1"
    try:
        if simulation:
            incident = service.start_simulation(actor=actor, data={**data, "scenario": form.get("scenario"),
                                                                   "scope": form.get("scope")})
        else:
            incident = service.create_incident(actor=actor, data=data, strict=False)
    except ValidationFailed as problem:
        return render("incidents/new.html", status=422, values=form, errors=problem.fields, message=problem.message,
                      tenants=_tenant_choices("Choose…"), simulation=simulation, **VOCABULARY)
    notice(f"{incident.reference} reported.")
    return redirect_to(url_for("incidents.detail", incident_id=incident.id))


def _detail_context(incident: Incident, **extra) -> dict:
    actor = current_actor()
    entries = timeline.entries(incident.id)
    actions = allowed_actions(incident, actor)
    approved = approved_for_tenant(actor=actor, tenant_id=incident.tenant_id) if "link_change" in actions else []
    corrected = {e.corrects_id for e in entries if e.corrects_id}
    review = reviews.review_of(incident.id)
    context = dict(
        incident=incident, entries=entries, corrected=corrected, actor=actor,
        actions=actions,
        communications=list(db.session.scalars(select(Communication).where(Communication.incident_id == incident.id)
                                               .order_by(Communication.created_at.desc()).limit(50))),
        changes=list(db.session.scalars(select(ChangeRequest).join(
            IncidentChangeLink, IncidentChangeLink.change_request_id == ChangeRequest.id)
            .where(IncidentChangeLink.incident_id == incident.id))),
        approved_changes=approved,
        change_choices={str(c.id): f"{c.reference} {c.summary[:80]}" for c in approved},
        vendors=list(db.session.scalars(select(VendorEngagement).where(VendorEngagement.incident_id == incident.id)
                                        .order_by(VendorEngagement.engaged_at))),
        review=review, action_items=reviews.action_items(review.id) if review else [],
        escalation_choices={team: TEAMS[team] for team in ESCALATION_TARGETS},
        entry_choices={str(e.id): f"{e.occurred_at:%Y-%m-%d %H:%M} {e.event_type}: {e.body[:60]}" for e in entries},
        tenant_name=_tenant_names().get(incident.tenant_id, ""), now=timeline.now(),
        templates_text={name: compose(name, incident) for name in ("acknowledgement", "status_update", "resolution")},
        form_errors={}, form_values={}, failed_action=None, form_message=None, **VOCABULARY)
    context.update(extra)
    return context


def _form_fragment(form_name: str, status: int, context: dict):
    """The refused form alone, with its errors, aimed back at itself (or, when that form is not on
    the page for this state, the message as an alert)."""
    if form_name not in context["actions"] and form_name not in ("review", "action_item", "note"):
        return error_response(status, context["form_message"])
    response = make_response(render_template("incidents/_form_fragment.html", **context), status)
    return retarget(response, f"#form-{form_name}", "outerHTML")


@bp.get("/incidents/<uuid:incident_id>")
@console_required("incidents.view")
def detail(incident_id: uuid.UUID):
    incident = service.get_incident(actor=current_actor(), incident_id=incident_id)
    return render("incidents/detail.html", block="incident", **_detail_context(incident))


@bp.post("/incidents/<uuid:incident_id>/actions/<action>")
@console_required("incidents.view")
def act(incident_id: uuid.UUID, action: str):
    """Run one SOP from its form; errors come back inside that form, success re-renders the incident."""
    actor = current_actor()
    data = {k: v for k, v in request.form.items() if k != "csrf_token"}
    spec = ACTIONS.get(action)
    try:
        incident = service.perform(actor=actor, incident_id=incident_id, action=action, data=data, strict=False)
    except DomainError as problem:
        if spec is None or problem.status == 404:
            raise
        incident = service.get_incident(actor=actor, incident_id=incident_id)
        context = _detail_context(incident, form_errors=problem.fields, form_message=problem.message,
                                  form_values=data, failed_action=action)
        if wants_fragment():
            return _form_fragment(action, problem.status, context)
        return render("incidents/detail.html", status=problem.status, **context)
    notice(f"{incident.reference}: {DONE.get(action, 'saved')}.")
    if wants_fragment():
        return render("incidents/detail.html", block="incident", **_detail_context(incident))
    return redirect_to(url_for("incidents.detail", incident_id=incident.id))


@bp.post("/incidents/<uuid:incident_id>/review")
@console_required("reviews.write")
def save_review(incident_id: uuid.UUID):
    return _review_step(incident_id, "review", lambda actor: reviews.save_review(
        actor=actor, incident_id=incident_id, summary=request.form.get("summary", ""),
        contributing_factors=request.form.get("contributing_factors", ""), lessons=request.form.get("lessons", "")))


@bp.post("/incidents/<uuid:incident_id>/review/sign-off")
@console_required("reviews.write")
def sign_off_review(incident_id: uuid.UUID):
    return _review_step(incident_id, "review", lambda actor: reviews.sign_off(actor=actor, incident_id=incident_id))


@bp.post("/incidents/<uuid:incident_id>/review/items")
@console_required("reviews.write")
def add_action_item(incident_id: uuid.UUID):
    from datetime import date

    raw = request.form.get("due_date", "")
    try:
        due = date.fromisoformat(raw) if raw else None
    except ValueError:
        due = None
    return _review_step(incident_id, "action_item", lambda actor: reviews.add_action_item(
        actor=actor, incident_id=incident_id, description=request.form.get("description", ""),
        owner=request.form.get("owner", ""), due_date=due))


def _review_step(incident_id: uuid.UUID, form_name: str, step):
    actor = current_actor()
    try:
        step(actor)
    except DomainError as problem:
        if problem.status == 404:
            raise
        incident = service.get_incident(actor=actor, incident_id=incident_id)
        context = _detail_context(incident, form_errors=problem.fields, form_message=problem.message,
                                  form_values=dict(request.form), failed_action=form_name)
        if wants_fragment():
            return _form_fragment(form_name, problem.status, context)
        return render("incidents/detail.html", status=problem.status, **context)
    incident = service.get_incident(actor=actor, incident_id=incident_id)
    notice(f"{incident.reference}: review saved.")
    if wants_fragment():
        return render("incidents/detail.html", block="incident", **_detail_context(incident))
    return redirect_to(url_for("incidents.detail", incident_id=incident_id))


@bp.get("/incidents/sla-breaches")
@console_required("sla.report")
def sla_report():
    actor = current_actor()
    parsed = REPORT_FILTERS.parse(request.args, choices={"tenant": _tenant_choices()})
    check_window(parsed)
    filters, page = None, None
    if parsed.ok:
        v = parsed.values
        filters = queries.IncidentFilters(severity=v.get("severity"), team=v.get("team"),
                                          tenant_id=int(v["tenant"]) if v.get("tenant") else None)
    if filters is not None and request.args.get("format") == "csv":
        return _breach_csv(actor, filters, parsed)
    if filters is not None:
        page = queries.breach_report(actor=actor, filters=filters, cursor=request.args.get("cursor"),
                                     since=parsed.values.get("since"), until=parsed.values.get("until"))
    return render("incidents/sla_report.html", block="results", status=200 if parsed.ok else 400,
                  push_url=url_for("incidents.sla_report", **parsed.query_args()), bar=REPORT_FILTERS, parsed=parsed,
                  page=page, args=parsed.query_args(), tenant_names=_tenant_names(), **VOCABULARY)


def _breach_csv(actor, filters, parsed) -> Response:
    names = _tenant_names()

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["number", "title", "tenant", "severity", "priority", "status", "team", "created_at",
                         "acknowledge_due_at", "acknowledged_at", "acknowledge_breached", "resolve_due_at",
                         "resolved_at", "resolve_breached", "breached_at"])
        cursor = None
        while True:
            page = queries.breach_report(actor=actor, filters=filters, cursor=cursor, limit=1000,
                                         since=parsed.values.get("since"), until=parsed.values.get("until"))
            for r in page.rows:
                writer.writerow([f"INC-{r.number}", r.title, names.get(r.tenant_id, r.tenant_id), r.severity,
                                 r.priority, r.status, r.assigned_team or "", r.created_at.isoformat(),
                                 r.acknowledge_due_at.isoformat(), r.acknowledged_at.isoformat()
                                 if r.acknowledged_at else "", r.acknowledge_breached, r.resolve_due_at.isoformat(),
                                 r.resolved_at.isoformat() if r.resolved_at else "", r.resolve_breached,
                                 r.breached_at.isoformat()])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    body = "".join(rows())  # bounded by the report's filters; built inside the request's scope
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="sla-breaches.csv"'
    return response
