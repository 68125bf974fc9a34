"""The OpenAPI 3.1 document of the HTTP contract that exists (spec §11).

Areas add their paths and schemas with `add_paths`/`add_schemas` when their API lands; a test
checks that every /api route in the URL map is described here and nothing else is.
"""

from __future__ import annotations

import copy

VERSION = "0.1.0"

_ERROR_RESPONSE = {"description": "Error", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Error"}}}}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid_transition", "invalid_fields", "unauthorized"]},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "For 422: field name → what is wrong with it"},
            },
        }},
    },
    "TokenRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string"},
            "workspace": {"type": "string", "description": "Workspace slug; defaults to the user's first"},
        },
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string", "description": "HS256 JWT with exp, iat, jti, sub"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "description": "Seconds until the token expires"},
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ok", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": {"enum": ["ok", "down"]}},
            "failed": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def errors(*codes: int) -> dict[str, dict]:
    return {str(code): _ERROR_RESPONSE for code in codes}


PATHS: dict[str, dict] = {
    "/healthz": {"get": {
        "summary": "Liveness", "operationId": "healthz", "tags": ["operations"], "security": [],
        "responses": {"200": {"description": "The process is up", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}},
    }},
    "/readyz": {"get": {
        "summary": "Readiness: the database and Redis answer", "operationId": "readyz", "tags": ["operations"],
        "security": [],
        "responses": {
            "200": {"description": "Ready", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
            "503": {"description": "A dependency is down; `failed` names it", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
        },
    }},
    "/metrics": {"get": {
        "summary": "Prometheus metrics (text exposition format)", "operationId": "metrics",
        "tags": ["operations"], "security": [],
        "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
    "/api/v1/auth/tokens": {"post": {
        "summary": "Exchange e-mail and password for an API token", "operationId": "createToken",
        "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
        "responses": {"200": {"description": "A token", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}},
            **errors(400, 401, 422, 429, 503)},
    }},
    "/api/v1/auth/tokens/current": {"delete": {
        "summary": "Revoke the presented token", "operationId": "revokeCurrentToken", "tags": ["auth"],
        "description": "The token's jti goes on the Redis denylist until the token would have expired.",
        "responses": {"204": {"description": "Revoked"}, **errors(401, 503)},
    }},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document", "operationId": "openapi", "tags": ["meta"], "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {
            "application/json": {"schema": {"type": "object"}}}}},
    }},
}


def add_paths(paths: dict[str, dict]) -> None:
    PATHS.update(paths)


def add_schemas(schemas: dict[str, dict]) -> None:
    SCHEMAS.update(schemas)


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Opsdesk API", "version": VERSION,
                 "description": "Incidents, monitoring intake, models and drift. Errors are "
                                "`{\"error\": {\"code\", \"message\"}}`."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": copy.deepcopy(PATHS),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": copy.deepcopy(SCHEMAS),
        },
    }
