"""Who may reach a view: console users, platform users, by capability; and the request's Actor.

Every console and /system request also puts the caller's tenant scope on the database session
here (see app.tenancy), before any view runs.
"""

from __future__ import annotations

from functools import wraps

from flask import Flask, g, request, url_for
from flask_login import current_user

from app.actors import Actor
from app.auth.sessions import SignedIn, load_signed_in
from app.errors import NotAllowed, ServiceUnavailable
from app.extensions import db, login_manager
from app.htmx import redirect_to
from app.tenancy import TenantScope, apply_scope

SCOPED_BLUEPRINTS = frozenset({"console", "audit", "workspaces", "auth", "system", "incidents", "changes",
                               "reviews", "alerts"})


def client_ip() -> str | None:
    return request.remote_addr


def current_actor() -> Actor:
    """The Actor for this request: the signed-in person (or API token), with ip and user agent."""
    actor = g.get("api_actor")
    if actor is not None:
        return actor
    person: SignedIn = current_user._get_current_object()  # type: ignore[attr-defined]
    cached = g.get("console_actor")
    if cached is None or cached[0] is not person:
        cached = (person, person.actor(ip=client_ip(), user_agent=request.headers.get("User-Agent")))
        g.console_actor = cached
    return cached[1]


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    # server-side sessions (login_sessions) already bind and revoke; no per-request fingerprinting
    login_manager.session_protection = None

    @login_manager.user_loader
    def _load(token: str):
        try:
            return load_signed_in(token)
        except ServiceUnavailable:
            # answer as signed out, so error pages still render; the request itself gets a 503
            g.session_store_down = True
            return None

    @login_manager.unauthorized_handler
    def _unauthorized():
        target = "system.login" if request.blueprint == "system" else "auth.login"
        return redirect_to(url_for(target, next=request.full_path.rstrip("?") if request.method == "GET" else None))

    @app.before_request
    def _scope_the_session():
        # Inside a request nothing is visible until a signed-in caller widens the scope.
        apply_scope(db.session, TenantScope.nothing())
        if request.blueprint not in SCOPED_BLUEPRINTS:
            return
        person = current_user
        signed_in = person.is_authenticated  # loads the session
        if g.get("session_store_down"):
            raise ServiceUnavailable("Sessions are unavailable right now (Redis is not answering).")
        if not signed_in:
            return
        if person.is_platform:
            if request.blueprint == "system":
                apply_scope(db.session, TenantScope.whole_platform())
            return
        if person.workspace_id is not None:
            apply_scope(db.session, TenantScope(workspace_id=person.workspace_id,
                                                tenant_ids=person.visible_tenant_ids))


def console_required(capability: str | None = None):
    """The view needs a signed-in console user who is a member of a workspace (and may do `capability`)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            person = current_user
            if not person.is_authenticated or person.is_platform:
                return login_manager.unauthorized()
            if person.workspace_id is None:
                raise NotAllowed("Your account is not a member of any workspace yet; ask a workspace admin.")
            if capability and not current_actor().can(capability):
                raise NotAllowed("Your role does not allow this.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def system_required(capability: str = "system.use"):
    """The view needs a signed-in platform user who may do `capability` (break-glass counts)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            person = current_user
            if not person.is_authenticated or not person.is_platform:
                return login_manager.unauthorized()
            if not current_actor().can(capability):
                raise NotAllowed("Your platform role does not allow this; break glass if you must.")
            return view(*args, **kwargs)

        return wrapped

    return decorator
