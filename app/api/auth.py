"""Bearer-token authentication for API views, and strict JSON bodies."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import g, request

from app.api import tokens
from app.api.service import actor_for_token
from app.errors import BadRequest, NotAllowed, Unauthenticated, ValidationFailed
from app.extensions import db
from app.tenancy import apply_scope


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    return value.strip()


def token_required(capability: str | None = None):
    """The view needs a valid, unrevoked token; its subject becomes the request's Actor and scope."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            claims = tokens.decode_token(bearer_token(), check_revoked=False)  # checked with the profile read
            actor = actor_for_token(claims, ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))
            if capability and not actor.can(capability):
                raise NotAllowed("The token's role does not allow this.")
            g.api_claims, g.api_actor = claims, actor
            apply_scope(db.session, actor.scope)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def json_body(*, required: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:
    """The request's JSON object; 400 when it is not one, 422 naming unknown or missing fields."""
    if not request.is_json:
        raise BadRequest("Send a JSON body with 'Content-Type: application/json'.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body is not a JSON object.")
    fields: dict[str, str] = {}
    for name in sorted(set(body) - required - set(optional)):
        fields[name] = "unknown field"
    for name in sorted(required - set(body)):
        fields[name] = "required"
    if fields:
        raise ValidationFailed("Some fields are missing or not recognised.", fields=fields)
    return body
