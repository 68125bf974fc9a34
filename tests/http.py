"""A test client that handles CSRF tokens and HTMX headers the way a browser with htmx would."""

from __future__ import annotations

import re

from tests.factories import PASSWORD

TOKEN_RE = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token" type="hidden" value="([^"]+)"|'
                      r'name="csrf_token" value="([^"]+)"')


class SessionClient:
    """Each request runs in its own application context, as it does under a real server; otherwise
    Flask would reuse the test's context and share its database session with the request."""

    def __init__(self, client):
        self._client = client
        self.app = client.application

    @property
    def raw(self):
        return _FreshContextClient(self._client)

    def csrf_token(self) -> str:
        body = self.raw.get("/login", follow_redirects=True).get_data(as_text=True)
        match = TOKEN_RE.search(body)
        assert match, "no CSRF token on the page"
        return next(group for group in match.groups() if group)

    @staticmethod
    def _htmx_headers(htmx: bool, headers: dict | None) -> dict:
        merged = dict(headers or {})
        if htmx:
            merged.setdefault("HX-Request", "true")
        return merged

    def get(self, path: str, *, htmx: bool = False, headers: dict | None = None, **kwargs):
        return self.raw.get(path, headers=self._htmx_headers(htmx, headers), **kwargs)

    def post(self, path: str, data: dict | None = None, *, htmx: bool = False, csrf: bool = True,
             headers: dict | None = None, **kwargs):
        data = dict(data or {})
        headers = self._htmx_headers(htmx, headers)
        if csrf:
            token = self.csrf_token()
            if htmx:
                headers["X-CSRFToken"] = token
            else:
                data.setdefault("csrf_token", token)
        return self.raw.post(path, data=data, headers=headers, **kwargs)

    def login(self, email: str, password: str = PASSWORD, **kwargs):
        return self.post("/login", {"email": email, "password": password}, **kwargs)

    def login_system(self, email: str, password: str = PASSWORD, **kwargs):
        return self.post("/system/login", {"email": email, "password": password}, **kwargs)

    def logout(self):
        return self.post("/logout")

    def session_cookie(self) -> str | None:
        cookie = self.raw.get_cookie("opsdesk_session")
        return cookie.value if cookie else None


class _FreshContextClient:
    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in {"get", "post", "put", "patch", "delete", "open", "head", "options"}:
            return attribute

        def call(*args, **kwargs):
            with self._client.application.app_context():
                response = attribute(*args, **kwargs)
                response.get_data()  # run streamed bodies while the context is alive
                response.close()
                return response

        return call
