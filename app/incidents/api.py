"""The incident API (spec §11): list, create, read with timeline, run an SOP action.

The same service functions as the console, so the same rules: 403 for role or segregation of
duties, 404 for missing or another tenant's, 409 `invalid_transition`, 422 naming the fields.
"""

from __future__ import annotations

from flask import g, jsonify, request, url_for
from sqlalchemy import select

from app.api import bp
from app.api.auth import json_body, token_required
from app.api.openapi import add_paths, add_schemas, errors
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.incidents import queries, service, timeline
from app.incidents.actions import ACTIONS, API_ACTIONS
from app.incidents.vocabulary import PRIORITIES, SEVERITIES, STATUSES, TEAMS
from app.workspaces.models import Tenant

LIST_PARAMS = {"status", "severity", "priority", "team", "assignee", "tenant", "label", "breached", "q", "sort",
               "cursor", "limit"}
CREATE_REQUIRED = {"title", "severity", "tenant"}
CREATE_OPTIONAL = {"description", "category", "subcategory", "affected_service", "labels", "detection_source",
                   "model_id"}


def _tenant_slugs() -> dict[int, str]:
    actor = g.api_actor
    return dict(db.session.execute(select(Tenant.id, Tenant.slug).where(Tenant.workspace_id == actor.workspace_id)).all())


def _iso(value):
    return value.isoformat() if value is not None else None


def incident_json(incident, slugs: dict[int, str]) -> dict:
    """The API's representation of an incident (an ORM object or a row with the same names)."""
    return {
        "id": str(incident.id), "number": f"INC-{incident.number}", "title": incident.title,
        "description": getattr(incident, "description", None), "status": incident.status,
        "severity": incident.severity, "priority": incident.priority, "category": incident.category,
        "subcategory": getattr(incident, "subcategory", None),
        "detection_source": getattr(incident, "detection_source", None), "trigger_source": incident.trigger_source,
        "model_id": str(incident.model_id) if getattr(incident, "model_id", None) else None,
        "affected_service": getattr(incident, "affected_service", None), "labels": list(incident.labels or []),
        "assigned_team": incident.assigned_team, "assignee": incident.assignee,
        "reporter": getattr(incident, "reporter", None), "created_by": getattr(incident, "created_by", None),
        "runbook_id": str(incident.runbook_id) if getattr(incident, "runbook_id", None) else None,
        "workaround_available": getattr(incident, "workaround_available", False),
        "is_simulation": incident.is_simulation, "tenant": slugs.get(incident.tenant_id),
        "created_at": _iso(incident.created_at), "updated_at": _iso(incident.updated_at),
        "acknowledged_at": _iso(getattr(incident, "acknowledged_at", None)),
        "mitigated_at": _iso(getattr(incident, "mitigated_at", None)),
        "resolved_at": _iso(getattr(incident, "resolved_at", None)),
        "closed_at": _iso(getattr(incident, "closed_at", None)),
        "sla": {
            "acknowledge_due_at": _iso(incident.acknowledge_due_at), "resolve_due_at": _iso(incident.resolve_due_at),
            "breached": bool(incident.acknowledge_breached or incident.resolve_breached),
            "acknowledge_breached": incident.acknowledge_breached, "resolve_breached": incident.resolve_breached,
            "paused": incident.sla_paused_at is not None,
        },
    }


def timeline_json(entry) -> dict:
    return {"id": str(entry.id), "event_type": entry.event_type, "body": entry.body, "author": entry.author,
            "occurred_at": _iso(entry.occurred_at), "created_at": _iso(entry.created_at),
            "corrects_id": str(entry.corrects_id) if entry.corrects_id else None, "data": entry.data or {}}


def _list_filters(slugs: dict[int, str]) -> tuple[queries.IncidentFilters, str, int]:
    args = request.args
    problems = {name: "unknown parameter" for name in sorted(set(args) - LIST_PARAMS)}
    checks = {"status": tuple(STATUSES) + ("active",), "severity": SEVERITIES, "priority": PRIORITIES,
              "team": TEAMS, "sort": queries.SORTS}
    for name, allowed in checks.items():
        if args.get(name) and args[name] not in allowed:
            problems[name] = "one of: " + ", ".join(allowed)
    tenant_id = None
    if args.get("tenant"):
        tenant_id = next((tid for tid, slug in slugs.items() if slug == args["tenant"]), None)
        if tenant_id is None or not g.api_actor.may_see_tenant(tenant_id):
            problems["tenant"] = "unknown tenant"
    breached = args.get("breached")
    if breached not in (None, "", "true", "false"):
        problems["breached"] = "true or false"
    limit = args.get("limit", str(queries.PAGE_SIZE))
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        problems["limit"] = "a number from 1 to 100"
    if problems:
        raise ValidationFailed("Some query parameters are not valid.", fields=problems)
    status = args.get("status")
    filters = queries.IncidentFilters(
        status=status if status and status != "active" else None, active_only=status == "active",
        severity=args.get("severity"), priority=args.get("priority"), team=args.get("team"),
        assignee=args.get("assignee"), tenant_id=tenant_id, label=args.get("label"),
        breached={"true": True, "false": False}.get(breached or ""), q=args.get("q"))
    return filters, args.get("sort") or "newest", int(limit)


@bp.get("/incidents")
@token_required("incidents.view")
def list_incidents():
    slugs = _tenant_slugs()
    filters, sort, limit = _list_filters(slugs)
    page = queries.list_page(actor=g.api_actor, filters=filters, sort=sort, cursor=request.args.get("cursor"),
                             limit=limit)
    service.audit_discovery(actor=g.api_actor, filters={k: v for k, v in request.args.items() if k != "cursor"})
    return jsonify(items=[incident_json(row, slugs) for row in page.rows], next_cursor=page.next_cursor)


@bp.post("/incidents")
@token_required()
def create_incident():
    body = json_body(required=CREATE_REQUIRED, optional=CREATE_OPTIONAL)
    if not isinstance(body.get("tenant"), str):
        raise ValidationFailed("Some fields are not valid.", fields={"tenant": "a tenant slug"})
    incident = service.create_incident(actor=g.api_actor, data=body)
    response = jsonify(incident_json(incident, _tenant_slugs()))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_incident", incident_id=incident.id)
    return response


@bp.get("/incidents/<incident_id>")
@token_required("incidents.view")
def get_incident(incident_id: str):
    incident = service.get_incident(actor=g.api_actor, incident_id=incident_id)
    return jsonify(dict(incident_json(incident, _tenant_slugs()),
                        timeline=[timeline_json(e) for e in timeline.entries(incident.id)]))


@bp.post("/incidents/<incident_id>/actions/<action>")
@token_required()
def run_action(incident_id: str, action: str):
    if action not in API_ACTIONS:
        raise NotFound(f"There is no incident action {action!r}; the API offers: {', '.join(API_ACTIONS)}.")
    spec = ACTIONS[action]
    body = json_body(required=set(), optional={f.name for f in spec.fields}) if request.data else {}
    incident = service.perform(actor=g.api_actor, incident_id=incident_id, action=action, data=body)
    return jsonify(incident_json(incident, _tenant_slugs()))


# -- OpenAPI --------------------------------------------------------------------------------------

def _enum(values) -> dict:
    return {"type": "string", "enum": list(values)}


_ACTION_BODIES = {
    name: {"type": "object", "additionalProperties": False,
           "required": [f.name for f in ACTIONS[name].fields if f.required],
           "properties": {f.name: {"type": "string"} for f in ACTIONS[name].fields}}
    for name in API_ACTIONS
}

add_schemas({
    "Incident": {
        "type": "object",
        "required": ["id", "number", "title", "status", "severity", "priority", "sla", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "number": {"type": "string", "examples": ["INC-1042"]},
            "title": {"type": "string", "maxLength": 500}, "description": {"type": ["string", "null"]},
            "status": _enum(STATUSES), "severity": _enum(SEVERITIES), "priority": _enum(PRIORITIES),
            "category": {"type": ["string", "null"]}, "subcategory": {"type": ["string", "null"]},
            "detection_source": {"type": "string"}, "trigger_source": {"type": "string"},
            "model_id": {"type": ["string", "null"], "format": "uuid"}, "affected_service": {"type": ["string", "null"]},
            "labels": {"type": "array", "items": {"type": "string"}}, "assigned_team": {"type": ["string", "null"]},
            "assignee": {"type": ["string", "null"]}, "reporter": {"type": ["string", "null"]},
            "created_by": {"type": ["string", "null"]}, "runbook_id": {"type": ["string", "null"]},
            "workaround_available": {"type": "boolean"}, "is_simulation": {"type": "boolean"},
            "tenant": {"type": "string"},
            **{f"{t}_at": {"type": ["string", "null"], "format": "date-time"}
               for t in ("created", "updated", "acknowledged", "mitigated", "resolved", "closed")},
            "sla": {"type": "object", "required": ["acknowledge_due_at", "resolve_due_at", "breached"], "properties": {
                "acknowledge_due_at": {"type": "string", "format": "date-time"},
                "resolve_due_at": {"type": "string", "format": "date-time"}, "breached": {"type": "boolean"},
                "acknowledge_breached": {"type": "boolean"}, "resolve_breached": {"type": "boolean"},
                "paused": {"type": "boolean"}}},
        },
    },
    "TimelineEntry": {"type": "object", "properties": {
        "id": {"type": "string"}, "event_type": {"type": "string"}, "body": {"type": "string"},
        "author": {"type": "string"}, "occurred_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"}, "corrects_id": {"type": ["string", "null"]},
        "data": {"type": "object"}}},
    "IncidentWithTimeline": {"allOf": [{"$ref": "#/components/schemas/Incident"}, {"type": "object", "properties": {
        "timeline": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEntry"}}}}]},
    "IncidentList": {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page"}}},
    "IncidentCreate": {"type": "object", "additionalProperties": False, "required": sorted(CREATE_REQUIRED),
                       "properties": {"title": {"type": "string", "maxLength": 500}, "severity": _enum(SEVERITIES),
                                      "tenant": {"type": "string", "description": "tenant slug"},
                                      "description": {"type": "string"}, "category": {"type": "string"},
                                      "subcategory": {"type": "string"}, "affected_service": {"type": "string"},
                                      "labels": {"type": "array", "items": {"type": "string"}},
                                      "detection_source": {"type": "string"},
                                      "model_id": {"type": "string", "format": "uuid"}}},
})

_INCIDENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Incident"}}}
add_paths({
    "/api/v1/incidents": {
        "get": {"summary": "List incidents (filters, cursor pagination)", "operationId": "listIncidents",
                "tags": ["incidents"],
                "parameters": [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                               for name in sorted(LIST_PARAMS)],
                "responses": {"200": {"description": "A page", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/IncidentList"}}}}, **errors(400, 401, 403, 422, 503)}},
        "post": {"summary": "Report an incident (SOP 2)", "operationId": "createIncident", "tags": ["incidents"],
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/IncidentCreate"}}}},
                 "responses": {"201": {"description": "Created", "content": _INCIDENT},
                               **errors(400, 401, 403, 422, 503)}},
    },
    "/api/v1/incidents/{incident_id}": {"get": {
        "summary": "One incident with its timeline", "operationId": "getIncident", "tags": ["incidents"],
        "parameters": [{"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string",
                                                                                          "format": "uuid"}}],
        "responses": {"200": {"description": "The incident", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/IncidentWithTimeline"}}}}, **errors(401, 404, 503)}}},
    "/api/v1/incidents/{incident_id}/actions/{action}": {"post": {
        "summary": "Run an SOP action", "operationId": "runIncidentAction", "tags": ["incidents"],
        "description": "Bodies per action: " + "; ".join(
            f"`{name}` {{{', '.join(f.name + ('' if f.required else '?') for f in ACTIONS[name].fields)}}}"
            for name in API_ACTIONS),
        "parameters": [
            {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
            {"name": "action", "in": "path", "required": True, "schema": _enum(API_ACTIONS)}],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "oneOf": list(_ACTION_BODIES.values())}}}},
        "responses": {"200": {"description": "The incident after the action", "content": _INCIDENT},
                      **errors(400, 401, 403, 404, 409, 422, 503)}}},
})
