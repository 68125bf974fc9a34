"""Login sessions: a PostgreSQL row of record, served from Redis on every request.

The browser's cookie holds a random token (`u.<user id>.<random>` or `p.<id>.<random>`); only its
SHA-256 is stored. Each request costs one Redis round trip: GETEX on the session (which slides
the idle timeout) pipelined with GET of the person's profile (their memberships, roles, tenant
limits and switcher choices). Profiles are dropped from Redis whenever a membership, a tenant or
an account changes, so role changes and removals apply on the next request; their short TTL
bounds staleness if a drop is ever missed.

When Redis has lost a session (a restart without persistence) the row in PostgreSQL brings it
back, within the same idle and absolute limits. When Redis does not answer, signed-in pages
fail closed with 503.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from flask import current_app
from sqlalchemy import func, text, update

from app.actors import Actor
from app.auth.models import LoginSession
from app.errors import NotFound, ServiceUnavailable
from app.extensions import db, get_redis, redis_key

log = logging.getLogger(__name__)

USER, PLATFORM = "u", "p"
PROFILE_TTL_SECONDS = 60
LAST_SEEN_WRITE_SECONDS = 300  # how often the row of record learns that a session is still in use


def now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class WorkspaceChoice:
    workspace_id: int
    slug: str
    name: str
    role: str
    tenants: list[tuple[int, str, str]]  # (id, slug, name) the member may see
    tenant_limit: tuple[int, ...] | None = None  # None = every tenant of the workspace


@dataclass
class SignedIn:
    """The person behind the current browser session (what Flask-Login calls the user)."""

    token: str
    session_id: int
    kind: str  # "user" or "platform_user"
    id: int
    email: str
    name: str
    role: str | None
    slug: str | None = None
    workspace_id: int | None = None
    workspace_slug: str | None = None
    workspace_name: str | None = None
    tenant_limit: tuple[int, ...] | None = None  # membership limit; None = all tenants
    selected_tenant_id: int | None = None  # the switcher's choice; None = all the member may see
    break_glass_until: datetime | None = None
    break_glass_reason: str | None = None
    workspaces: list[WorkspaceChoice] = field(default_factory=list)  # what the switcher offers
    rendered: dict = field(default_factory=dict, repr=False, compare=False)  # layout pieces made for this person

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.token

    @property
    def is_platform(self) -> bool:
        return self.kind == "platform_user"

    @property
    def is_break_glass(self) -> bool:
        return self.break_glass_until is not None and self.break_glass_until > now()

    @property
    def visible_tenant_ids(self) -> tuple[int, ...] | None:
        if self.selected_tenant_id is not None:
            return (self.selected_tenant_id,)
        return self.tenant_limit

    @property
    def visible_tenants(self) -> list[tuple[int, str, str]]:
        """(id, slug, name) of the tenants in view: the switcher's choice, or all the member may see."""
        ids = self.visible_tenant_ids
        for choice in self.workspaces:
            if choice.workspace_id == self.workspace_id:
                return [t for t in choice.tenants if ids is None or t[0] in ids]
        return []

    @functools.cached_property
    def tenant_names(self) -> dict[int, str]:
        """{id: name} of the tenants in view (made once per person; do not change it)."""
        return {tenant_id: name for tenant_id, _, name in self.visible_tenants}

    def tenant_choices(self, empty: str) -> dict[str, str]:
        """The tenants in view for a select, after an `empty` choice (made once per person and label)."""
        key = ("tenant_choices", empty)
        if key not in self.rendered:
            self.rendered[key] = {"": empty, **{str(tenant_id): name for tenant_id, name in self.tenant_names.items()}}
        return self.rendered[key]

    def actor(self, *, ip: str | None = None, user_agent: str | None = None) -> Actor:
        return Actor(kind=self.kind, id=self.id, label=self.email, name=self.name, slug=self.slug,
                     workspace_id=self.workspace_id, role=self.role, tenant_ids=self.visible_tenant_ids,
                     is_break_glass=self.is_break_glass, ip=ip, user_agent=(user_agent or "")[:512] or None)


# -- profiles: who a person is right now ---------------------------------------------------------

_WORKSPACES_SQL = """
SELECT coalesce(json_agg(json_build_array(w.id, w.slug, w.name, m.role, (
           SELECT coalesce(json_agg(json_build_array(t.id, t.slug, t.name) ORDER BY t.name), '[]')
           FROM tenants t
           WHERE t.workspace_id = w.id
             AND (NOT EXISTS (SELECT 1 FROM membership_tenants x WHERE x.membership_id = m.id)
                  OR t.id IN (SELECT x.tenant_id FROM membership_tenants x WHERE x.membership_id = m.id))
       ), (SELECT json_agg(x.tenant_id ORDER BY x.tenant_id) FROM membership_tenants x
           WHERE x.membership_id = m.id)) ORDER BY w.name), '[]')
FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
WHERE m.user_id = {user_id}
"""

_USER_PROFILE_SQL = text(f"""
SELECT u.id, u.email, u.name, u.slug, ({_WORKSPACES_SQL.format(user_id="u.id")}) AS workspaces
FROM users u WHERE u.id = :id AND u.is_active
""")

_PLATFORM_PROFILE_SQL = text("""
SELECT p.id, p.email, p.name, p.role, extract(epoch FROM g.expires_at) AS break_glass_until,
       g.reason AS break_glass_reason
FROM platform_users p
LEFT JOIN LATERAL (
    SELECT g.expires_at, g.reason FROM break_glass_grants g
    WHERE g.platform_user_id = p.id AND g.ended_at IS NULL AND g.expires_at > now()
    ORDER BY g.expires_at DESC LIMIT 1
) g ON true
WHERE p.id = :id AND p.is_active
""")


def _profile_key(kind: str, person_id: int) -> str:
    return redis_key("profile", kind, person_id)


def _load_profile(kind: str, person_id: int) -> dict | None:
    if kind == USER:
        row = db.session.execute(_USER_PROFILE_SQL, {"id": person_id}).mappings().first()
    else:
        row = db.session.execute(_PLATFORM_PROFILE_SQL, {"id": person_id}).mappings().first()
    db.session.rollback()  # read-only; do not hold a transaction open for the rest of the request
    if row is None:
        return None
    profile = dict(row)
    if profile.get("break_glass_until") is not None:
        profile["break_glass_until"] = float(profile["break_glass_until"])
    return profile


def _choices(items: Iterable[list]) -> list[WorkspaceChoice]:
    return [WorkspaceChoice(workspace_id=ws_id, slug=slug, name=name, role=role,
                            tenants=[tuple(t) for t in tenants], tenant_limit=tuple(limit) if limit else None)
            for ws_id, slug, name, role, tenants, limit in items]


def _cached_profile(client, kind: str, person_id: int, raw: bytes | None) -> dict | None:
    if raw:
        return json.loads(raw)
    profile = _load_profile(kind, person_id)
    if profile is not None:
        try:
            client.set(_profile_key(kind, person_id), json.dumps(profile), ex=PROFILE_TTL_SECONDS)
        except redis.RedisError:
            raise ServiceUnavailable("Sessions are unavailable right now (Redis is not answering).") from None
    return profile


def revoked_and_profile(denylist_key: str, user_id: int) -> tuple[bool, dict | None]:
    """For API tokens: whether the token is revoked and who its user is now, in one round trip."""
    client = get_redis()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.exists(denylist_key)
        pipe.get(_profile_key(USER, user_id))
        revoked, raw = pipe.execute()
    except redis.RedisError:
        raise ServiceUnavailable("Token revocation cannot be checked right now (Redis is not answering).") from None
    if revoked:
        return True, None
    return False, _cached_profile(client, USER, user_id, raw)


def invalidate_profiles(kind: str, person_ids: Iterable[int]) -> None:
    """Make the next request of these people reload who they are (after a committed change)."""
    keys = [_profile_key(kind, pid) for pid in set(person_ids)]
    if not keys:
        return
    try:
        get_redis().delete(*keys)
    except redis.RedisError:
        log.warning("could not drop %d cached profile(s); they expire within %ss", len(keys), PROFILE_TTL_SECONDS)


def invalidate_workspace_profiles(workspace_id: int) -> None:
    """Every member of a workspace (e.g. its tenants changed, so their switchers did too)."""
    ids = db.session.scalars(text("SELECT user_id FROM memberships WHERE workspace_id = :ws"),
                             {"ws": workspace_id}).all()
    invalidate_profiles(USER, ids)


# -- sessions --------------------------------------------------------------------------------------

def _session_key(digest: str) -> str:
    return redis_key("session", digest)


def _idle_seconds() -> int:
    return current_app.config["SESSION_IDLE_MINUTES"] * 60


def _parse_token(token: str) -> tuple[str, int] | None:
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] not in (USER, PLATFORM) or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def start_session(*, kind: str, person_id: int, workspace_id: int | None, ip: str | None,
                  user_agent: str | None) -> str:
    """Record a new session (the caller commits), then publish it to Redis; returns the token."""
    token = f"{kind}.{person_id}.{secrets.token_urlsafe(32)}"
    digest = token_hash(token)
    expires_at = now() + current_app.config["PERMANENT_SESSION_LIFETIME"]
    row = LoginSession(token_hash=digest, user_id=person_id if kind == USER else None,
                       platform_user_id=person_id if kind == PLATFORM else None, workspace_id=workspace_id,
                       expires_at=expires_at, ip=ip, user_agent=(user_agent or "")[:512] or None)
    db.session.add(row)
    db.session.flush()
    _publish(digest, {"sid": row.id, "kind": kind, "pid": person_id, "ws": workspace_id, "tenant": None,
                      "exp": expires_at.timestamp(), "seen": time.time()})
    return token


def _publish(digest: str, state: dict) -> None:
    try:
        get_redis().set(_session_key(digest), json.dumps(state), ex=_idle_seconds())
    except redis.RedisError:
        raise ServiceUnavailable("Sessions are unavailable right now (Redis is not answering).") from None


def _state_from_row(digest: str, kind: str, person_id: int) -> dict | None:
    """The session as PostgreSQL knows it, when Redis has lost it."""
    row = db.session.execute(text("""
        SELECT id, workspace_id, tenant_id, extract(epoch FROM expires_at) AS exp
        FROM login_sessions
        WHERE token_hash = :digest AND revoked_at IS NULL AND expires_at > now()
          AND last_seen_at > now() - make_interval(secs => :idle)
          AND coalesce(user_id, platform_user_id) = :pid AND (user_id IS NOT NULL) = :is_user
    """), {"digest": digest, "idle": _idle_seconds(), "pid": person_id, "is_user": kind == USER}).first()
    db.session.rollback()
    if row is None:
        return None
    state = {"sid": row.id, "kind": kind, "pid": person_id, "ws": row.workspace_id, "tenant": row.tenant_id,
             "exp": float(row.exp), "seen": time.time()}
    _publish(digest, state)
    return state


# The person of each (token, session, profile) as Redis holds them, kept in this process: the
# same values give the same person, and any change (a revocation, a switch, a role change)
# changes or removes a value, so it is never served stale. It spares every request the JSON
# and the objects, and lets a person's switcher be rendered once (see app.templating).
_known: dict[tuple, tuple[dict, SignedIn]] = {}
SIGNED_IN_KEPT = 512  # a person with a hundred tenants and their switcher is some tens of KB


def load_signed_in(token: str | None) -> SignedIn | None:
    """The person of a session token, or None when it is unknown, revoked, expired or idle too long.

    Raises ServiceUnavailable when Redis does not answer (fail closed).
    """
    parsed = _parse_token(token or "")
    if parsed is None:
        return None
    kind, person_id = parsed
    digest = token_hash(token)
    client = get_redis()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.getex(_session_key(digest), ex=_idle_seconds())
        pipe.get(_profile_key(kind, person_id))
        raw_state, raw_profile = pipe.execute()
    except redis.RedisError:
        raise ServiceUnavailable("Sessions are unavailable right now (Redis is not answering).") from None
    memo_key = (token, raw_state, raw_profile) if raw_state and raw_profile else None
    known = _known.get(memo_key) if memo_key else None
    if known is not None:
        state, person = known
        if state["exp"] < time.time():
            return None
        if time.time() - state.get("seen", 0) <= LAST_SEEN_WRITE_SECONDS:
            return person
        del _known[memo_key]
        _record_last_seen(digest, dict(state))
        return person
    state = json.loads(raw_state) if raw_state else _state_from_row(digest, kind, person_id)
    if state is None or state.get("pid") != person_id or state.get("kind") != kind or state["exp"] < time.time():
        return None
    profile = _cached_profile(client, kind, person_id, raw_profile)
    if profile is None:
        return None
    if time.time() - state.get("seen", 0) > LAST_SEEN_WRITE_SECONDS:
        _record_last_seen(digest, state)
        memo_key = None
    person = _signed_in(token, kind, state, profile)
    if memo_key:
        if len(_known) >= SIGNED_IN_KEPT:
            _known.clear()
        _known[memo_key] = (state, person)
    return person


def _record_last_seen(digest: str, state: dict) -> None:
    db.session.execute(update(LoginSession).where(LoginSession.id == state["sid"]).values(last_seen_at=func.now()))
    db.session.commit()
    state["seen"] = time.time()
    _publish(digest, state)


def _signed_in(token: str, kind: str, state: dict, profile: dict) -> SignedIn:
    if kind == PLATFORM:
        until = profile.get("break_glass_until")
        return SignedIn(token=token, session_id=state["sid"], kind="platform_user", id=profile["id"],
                        email=profile["email"], name=profile["name"], role=profile["role"],
                        break_glass_until=datetime.fromtimestamp(until, UTC) if until else None,
                        break_glass_reason=profile.get("break_glass_reason"))
    choices = _choices(profile["workspaces"])
    current = next((c for c in choices if c.workspace_id == state.get("ws")), None)
    if current is None and choices:
        current = min(choices, key=lambda c: c.workspace_id)
    selected = state.get("tenant") if current is not None and current.workspace_id == state.get("ws") else None
    if selected is not None and selected not in {t[0] for t in current.tenants}:
        selected = None
    return SignedIn(token=token, session_id=state["sid"], kind="user", id=profile["id"], email=profile["email"],
                    name=profile["name"], slug=profile["slug"], role=current.role if current else None,
                    workspace_id=current.workspace_id if current else None,
                    workspace_slug=current.slug if current else None,
                    workspace_name=current.name if current else None,
                    tenant_limit=current.tenant_limit if current else None, selected_tenant_id=selected,
                    workspaces=choices)


def revoke_session(person: SignedIn) -> None:
    """End a session everywhere: Redis first (so a failure changes nothing), then the row of record."""
    try:
        get_redis().delete(_session_key(token_hash(person.token)))
    except redis.RedisError:
        raise ServiceUnavailable("You cannot be signed out right now (Redis is not answering); try again.") from None
    db.session.execute(update(LoginSession).where(LoginSession.id == person.session_id)
                       .values(revoked_at=func.now()))


def revoke_user_sessions(user_id: int) -> int:
    """End every session of a user (an account disabled); the caller commits."""
    digests = db.session.scalars(text("""
        UPDATE login_sessions SET revoked_at = now()
        WHERE user_id = :uid AND revoked_at IS NULL RETURNING token_hash
    """), {"uid": user_id}).all()
    if digests:
        try:
            get_redis().delete(*[_session_key(d) for d in digests])
        except redis.RedisError:
            raise ServiceUnavailable("Sessions cannot be ended right now (Redis is not answering).") from None
    invalidate_profiles(USER, [user_id])
    return len(digests)


def switcher_choices(*, user_id: int) -> list[WorkspaceChoice]:
    """The workspaces of a user and, in each, the tenants they may see (fresh from the database)."""
    items = db.session.scalar(text(_WORKSPACES_SQL.format(user_id=":user_id")), {"user_id": user_id})
    return _choices(items)


def switch_context(*, person: SignedIn, workspace_id: int, tenant_id: int | None) -> None:
    """Point the session at another workspace and/or tenant the user may see."""
    choice = next((c for c in switcher_choices(user_id=person.id) if c.workspace_id == workspace_id), None)
    if choice is None:
        raise NotFound("That workspace does not exist or you are not a member of it.")
    if tenant_id is not None and tenant_id not in {t[0] for t in choice.tenants}:
        raise NotFound("That tenant does not exist or is outside your access.")
    db.session.execute(update(LoginSession).where(LoginSession.id == person.session_id)
                       .values(workspace_id=workspace_id, tenant_id=tenant_id))
    db.session.commit()
    digest = token_hash(person.token)
    try:
        raw = get_redis().get(_session_key(digest))
    except redis.RedisError:
        raise ServiceUnavailable("Sessions are unavailable right now (Redis is not answering).") from None
    state = json.loads(raw) if raw else _state_from_row(digest, USER, person.id)
    if state is not None:
        state.update(ws=workspace_id, tenant=tenant_id)
        _publish(digest, state)


def prune_login_sessions(*, keep_days: int = 30) -> int:
    """Delete sessions that expired or were revoked more than `keep_days` ago; returns how many."""
    result = db.session.execute(text("""
        DELETE FROM login_sessions
        WHERE coalesce(revoked_at, expires_at) < now() - make_interval(days => :days)
    """), {"days": keep_days})
    db.session.commit()
    return result.rowcount
