"""Response headers every page gets (a CSP without inline script, no framing, no sniffing), and
the CSRF token the pages carry."""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request, session
from flask_wtf.csrf import generate_csrf

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html" or request.path.startswith("/api/"):
            # pages and API answers carry people's data: never keep them in shared or browser caches
            headers.setdefault("Cache-Control", "no-store")
        return response


CSRF_FIELD = "csrf_token"  # flask-wtf's default field name, also its key in the session and in g
SIGNED_TOKENS_KEPT = 10_000


def csrf_token() -> str:
    """flask-wtf's CSRF token, signed once per session secret in each process.

    Every page carries the token (in `hx-headers` and its forms), and flask-wtf signs it afresh on
    every request. Tokens do not expire by age here (WTF_CSRF_TIME_LIMIT is None): a token is good
    exactly as long as the session's secret, which a new sign-in replaces, so a token signed once
    serves every later page of that session.
    """
    token = g.get(CSRF_FIELD)
    if token:
        return token
    signed_tokens = current_app.extensions.setdefault("opsdesk_signed_csrf", {})
    secret = session.get(CSRF_FIELD)
    token = signed_tokens.get(secret) if secret else None
    if token is None:
        token = generate_csrf()
        if len(signed_tokens) >= SIGNED_TOKENS_KEPT:
            signed_tokens.clear()
        signed_tokens[session[CSRF_FIELD]] = token
    setattr(g, CSRF_FIELD, token)
    return token
