"""The OpenAPI document describes exactly the API that exists."""

from __future__ import annotations

import re


def test_openapi_document_covers_every_api_route(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.endpoint.startswith("health.") or rule.rule == "/metrics":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == described


def test_every_operation_has_responses_and_errors_use_the_error_schema(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (path, method)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/api/"):
                    assert response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
