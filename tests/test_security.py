"""Security headers on every kind of response, and templates that need no inline script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "app" / "templates"


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page", "/api/v1/openapi.json", "/system/login"])
def test_security_headers(client, path):
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_with_personal_data_are_not_cached(client, world):
    client.login(world.email("auditor"))
    assert client.get("/audit").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")))
def test_templates_have_no_inline_script_or_handlers(template):
    source = (TEMPLATES / template).read_text()
    for tag in re.findall(r"<script\b[^>]*>", source, re.I):
        assert "src=" in tag, f"inline <script> in {template}"
    assert not re.search(r"\son[a-z]+\s*=", source, re.I), f"inline event handler in {template}"
    assert "hx-on" not in source and "javascript:" not in source.lower()
    assert "<style" not in source.lower() and ' style="' not in source.lower(), f"inline style in {template}"
