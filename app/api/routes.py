"""API token endpoints and the OpenAPI document."""

from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp, service
from app.api.auth import json_body, token_required
from app.api.openapi import openapi_document
from app.errors import ValidationFailed
from app.extensions import csrf

csrf.exempt(bp)  # bearer tokens, never cookies: nothing for a forged cross-site request to ride on


@bp.post("/auth/tokens")
def create_token():
    body = json_body(required={"email", "password"}, optional={"workspace"})
    fields = {name: "must be a non-empty string" for name in ("email", "password")
              if not isinstance(body.get(name), str) or not body[name].strip()}
    if "workspace" in body and not isinstance(body["workspace"], str):
        fields["workspace"] = "must be a workspace slug"
    if fields:
        raise ValidationFailed("Some fields are not valid.", fields=fields)
    issued = service.create_user_token(email=body["email"], password=body["password"],
                                       workspace_slug=body.get("workspace"), ip=request.remote_addr,
                                       user_agent=request.headers.get("User-Agent"))
    return jsonify(issued.as_json()), 200


@bp.delete("/auth/tokens/current")
@token_required()
def revoke_current_token():
    service.revoke_current(claims=g.api_claims, actor=g.api_actor)
    return "", 204


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
