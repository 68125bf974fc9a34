"""Signing in and out, server-side login sessions, the workspace/tenant switcher, break-glass.

A login session is a row in `login_sessions`; the browser's cookie holds only a random token
whose SHA-256 is stored. Loading the signed-in person is one query that also brings their
membership in the current workspace, so role changes and sign-outs take effect on the next
request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, text, update

from app.actors import Actor
from app.audit import service as audit
from app.auth import throttle
from app.auth.models import BreakGlassGrant, LoginSession, PlatformUser, User
from app.auth.passwords import verify_password
from app.errors import NotAllowed, NotFound, Unauthenticated, ValidationFailed
from app.extensions import db
from app.workspaces.models import Membership, Tenant

BAD_CREDENTIALS = "The e-mail address or password is not right."
USER_TOKEN_PREFIX, PLATFORM_TOKEN_PREFIX = "u.", "p."


def now() -> datetime:
    return datetime.now(UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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

    def actor(self, *, ip: str | None = None, user_agent: str | None = None) -> Actor:
        return Actor(kind=self.kind, id=self.id, label=self.email, name=self.name, slug=self.slug,
                     workspace_id=self.workspace_id, role=self.role, tenant_ids=self.visible_tenant_ids,
                     is_break_glass=self.is_break_glass, ip=ip, user_agent=(user_agent or "")[:512] or None)


_LOAD_USER_SQL = text("""
SELECT s.id AS session_id, s.tenant_id AS selected_tenant_id, s.last_seen_at,
       u.id, u.email, u.name, u.slug,
       m.role, m.workspace_id, w.slug AS workspace_slug, w.name AS workspace_name,
       (SELECT array_agg(mt.tenant_id ORDER BY mt.tenant_id) FROM membership_tenants mt
         WHERE mt.membership_id = m.id) AS tenant_limit
FROM login_sessions s
JOIN users u ON u.id = s.user_id AND u.is_active
LEFT JOIN LATERAL (
    SELECT m.id, m.role, m.workspace_id FROM memberships m WHERE m.user_id = u.id
    ORDER BY (m.workspace_id = s.workspace_id) DESC NULLS LAST, m.workspace_id LIMIT 1
) m ON true
LEFT JOIN workspaces w ON w.id = m.workspace_id
WHERE s.token_hash = :token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
  AND s.last_seen_at > now() - make_interval(mins => :idle_minutes)
""")

_LOAD_PLATFORM_SQL = text("""
SELECT s.id AS session_id, s.last_seen_at, p.id, p.email, p.name, p.role,
       g.expires_at AS break_glass_until, g.reason AS break_glass_reason
FROM login_sessions s
JOIN platform_users p ON p.id = s.platform_user_id AND p.is_active
LEFT JOIN LATERAL (
    SELECT g.expires_at, g.reason FROM break_glass_grants g
    WHERE g.platform_user_id = p.id AND g.ended_at IS NULL AND g.expires_at > now()
    ORDER BY g.expires_at DESC LIMIT 1
) g ON true
WHERE s.token_hash = :token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
  AND s.last_seen_at > now() - make_interval(mins => :idle_minutes)
""")


def load_signed_in(token: str | None) -> SignedIn | None:
    """The person of a session token, or None when it is unknown, revoked, expired or idle too long."""
    if not token or not token.startswith((USER_TOKEN_PREFIX, PLATFORM_TOKEN_PREFIX)):
        return None
    params = {"token_hash": _token_hash(token), "idle_minutes": current_app.config["SESSION_IDLE_MINUTES"]}
    if token.startswith(USER_TOKEN_PREFIX):
        row = db.session.execute(_LOAD_USER_SQL, params).first()
        if row is None:
            return None
        limit = tuple(row.tenant_limit) if row.tenant_limit else None
        selected = row.selected_tenant_id
        if selected is not None and limit is not None and selected not in limit:
            selected = None
        person = SignedIn(token=token, session_id=row.session_id, kind="user", id=row.id, email=row.email,
                          name=row.name, slug=row.slug, role=row.role, workspace_id=row.workspace_id,
                          workspace_slug=row.workspace_slug, workspace_name=row.workspace_name,
                          tenant_limit=limit, selected_tenant_id=selected)
    else:
        row = db.session.execute(_LOAD_PLATFORM_SQL, params).first()
        if row is None:
            return None
        person = SignedIn(token=token, session_id=row.session_id, kind="platform_user", id=row.id,
                          email=row.email, name=row.name, role=row.role,
                          break_glass_until=row.break_glass_until, break_glass_reason=row.break_glass_reason)
    if row.last_seen_at < now() - timedelta(minutes=1):
        # keep the idle clock running without a write on every request
        db.session.execute(update(LoginSession).where(LoginSession.id == row.session_id)
                           .values(last_seen_at=func.now()))
        db.session.commit()
    return person


def _start_session(*, ip: str | None, user_agent: str | None, user: User | None = None,
                   platform_user: PlatformUser | None = None, workspace_id: int | None = None) -> str:
    prefix = USER_TOKEN_PREFIX if user is not None else PLATFORM_TOKEN_PREFIX
    token = prefix + secrets.token_urlsafe(32)
    db.session.add(LoginSession(
        token_hash=_token_hash(token), user_id=user.id if user else None,
        platform_user_id=platform_user.id if platform_user else None, workspace_id=workspace_id,
        expires_at=now() + current_app.config["PERMANENT_SESSION_LIFETIME"],
        ip=ip, user_agent=(user_agent or "")[:512] or None))
    return token


def _first_workspace_id(user_id: int) -> int | None:
    return db.session.scalar(select(Membership.workspace_id).where(Membership.user_id == user_id)
                             .order_by(Membership.workspace_id).limit(1))


def sign_in(*, email: str, password: str, ip: str | None, user_agent: str | None) -> str:
    """Check a console user's credentials; start a new session and return its token.

    Unknown addresses, wrong passwords and disabled accounts all get the same answer, and all
    count against the same throttle.
    """
    email = (email or "").strip()
    throttle.check(realm="console", email=email, ip=ip)
    user = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    password_ok = verify_password(user.password_hash if user else None, password or "")
    if user is None or not password_ok or not user.is_active:
        throttle.record_failure(realm="console", email=email, ip=ip)
        attempted = Actor(kind="user", id=user.id if user else None, label=email[:254] or "(blank)", ip=ip,
                          user_agent=(user_agent or "")[:512] or None)
        audit.record(actor=attempted, action="login", ref_type="user", ref_id=user.id if user else None,
                     workspace_id=_first_workspace_id(user.id) if user else None,
                     context={"outcome": "failed", "realm": "console"})
        db.session.commit()
        raise Unauthenticated(BAD_CREDENTIALS)
    throttle.clear(realm="console", email=email)
    workspace_id = _first_workspace_id(user.id)
    token = _start_session(ip=ip, user_agent=user_agent, user=user, workspace_id=workspace_id)
    user.last_login_at = now()
    actor = Actor(kind="user", id=user.id, label=user.email, ip=ip, user_agent=(user_agent or "")[:512] or None,
                  workspace_id=workspace_id)
    audit.record(actor=actor, action="login", ref_type="user", ref_id=user.id,
                 context={"outcome": "succeeded", "realm": "console"})
    db.session.commit()
    return token


def sign_in_platform(*, email: str, password: str, ip: str | None, user_agent: str | None) -> str:
    """The same for /system: platform users only, recorded in the platform audit chain."""
    email = (email or "").strip()
    throttle.check(realm="system", email=email, ip=ip)
    person = db.session.scalar(select(PlatformUser).where(func.lower(PlatformUser.email) == email.lower()))
    password_ok = verify_password(person.password_hash if person else None, password or "")
    ua = (user_agent or "")[:512] or None
    if person is None or not password_ok or not person.is_active:
        throttle.record_failure(realm="system", email=email, ip=ip)
        attempted = Actor(kind="platform_user", id=person.id if person else None, label=email[:254] or "(blank)",
                          ip=ip, user_agent=ua)
        audit.record(actor=attempted, action="login", ref_type="platform_user",
                     ref_id=person.id if person else None, context={"outcome": "failed", "realm": "system"})
        db.session.commit()
        raise Unauthenticated(BAD_CREDENTIALS)
    throttle.clear(realm="system", email=email)
    token = _start_session(ip=ip, user_agent=user_agent, platform_user=person)
    person.last_login_at = now()
    audit.record(actor=Actor(kind="platform_user", id=person.id, label=person.email, ip=ip, user_agent=ua),
                 action="login", ref_type="platform_user", ref_id=person.id,
                 context={"outcome": "succeeded", "realm": "system"})
    db.session.commit()
    return token


def sign_out(*, person: SignedIn, ip: str | None, user_agent: str | None) -> None:
    """Revoke the session row, so the same cookie (or a copy) no longer signs anyone in."""
    db.session.execute(update(LoginSession).where(LoginSession.id == person.session_id)
                       .values(revoked_at=func.now()))
    actor = person.actor(ip=ip, user_agent=user_agent)
    audit.record(actor=actor, action="logout", ref_type=person.kind, ref_id=person.id,
                 workspace_id=person.workspace_id, context={"realm": "system" if person.is_platform else "console"})
    db.session.commit()


def revoke_user_sessions(user_id: int) -> int:
    """End every session of a user (used when an account is disabled); the caller commits."""
    result = db.session.execute(update(LoginSession)
                                .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
                                .values(revoked_at=func.now()))
    return result.rowcount


@dataclass(frozen=True)
class WorkspaceChoice:
    workspace_id: int
    slug: str
    name: str
    role: str
    tenants: list[tuple[int, str, str]]  # (id, slug, name) the member may see


def switcher_choices(*, user_id: int) -> list[WorkspaceChoice]:
    """The workspaces of a user and, in each, the tenants they may see (one query)."""
    rows = db.session.execute(text("""
        SELECT w.id, w.slug, w.name, m.role,
               coalesce(json_agg(json_build_array(t.id, t.slug, t.name) ORDER BY t.name)
                        FILTER (WHERE t.id IS NOT NULL), '[]') AS tenants
        FROM memberships m
        JOIN workspaces w ON w.id = m.workspace_id
        LEFT JOIN tenants t ON t.workspace_id = w.id
             AND (NOT EXISTS (SELECT 1 FROM membership_tenants x WHERE x.membership_id = m.id)
                  OR EXISTS (SELECT 1 FROM membership_tenants x WHERE x.membership_id = m.id
                             AND x.tenant_id = t.id))
        WHERE m.user_id = :user_id
        GROUP BY w.id, w.slug, w.name, m.role
        ORDER BY w.name
    """), {"user_id": user_id}).all()
    return [WorkspaceChoice(workspace_id=r.id, slug=r.slug, name=r.name, role=r.role,
                            tenants=[tuple(t) for t in r.tenants]) for r in rows]


def switch_context(*, person: SignedIn, workspace_id: int, tenant_id: int | None) -> None:
    """Point the session at another workspace and/or tenant the user may see."""
    choices = {c.workspace_id: c for c in switcher_choices(user_id=person.id)}
    choice = choices.get(workspace_id)
    if choice is None:
        raise NotFound("That workspace does not exist or you are not a member of it.")
    if tenant_id is not None and tenant_id not in {t[0] for t in choice.tenants}:
        raise NotFound("That tenant does not exist or is outside your access.")
    db.session.execute(update(LoginSession).where(LoginSession.id == person.session_id)
                       .values(workspace_id=workspace_id, tenant_id=tenant_id))
    db.session.commit()


def tenant_in_workspace(*, workspace_id: int, tenant_id: int) -> bool:
    return db.session.scalar(select(func.count()).select_from(Tenant)
                             .where(Tenant.workspace_id == workspace_id, Tenant.id == tenant_id)) == 1


# -- break-glass ---------------------------------------------------------------------------------

MIN_REASON_LENGTH = 10


def start_break_glass(*, actor: Actor, reason: str, minutes: int | None = None) -> BreakGlassGrant:
    """Elevate a platform user for a limited time, with a reason; audited as `break_glass`."""
    if actor.kind != "platform_user" or not actor.can("system.break_glass"):
        raise NotAllowed("Only platform users can break glass.")
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise ValidationFailed("Give a reason of at least 10 characters.",
                               fields={"reason": f"At least {MIN_REASON_LENGTH} characters."})
    limit = current_app.config["BREAK_GLASS_MINUTES"]
    minutes = minutes or limit
    if not 1 <= minutes <= limit:
        raise ValidationFailed(f"Elevation lasts between 1 and {limit} minutes.",
                               fields={"minutes": f"Between 1 and {limit}."})
    active = db.session.scalar(select(BreakGlassGrant).where(
        BreakGlassGrant.platform_user_id == actor.id, BreakGlassGrant.ended_at.is_(None),
        BreakGlassGrant.expires_at > func.now()).with_for_update())
    if active is not None:
        raise ValidationFailed("You are already elevated; end it before starting another.")
    grant = BreakGlassGrant(platform_user_id=actor.id, reason=reason[:1000],
                            expires_at=now() + timedelta(minutes=minutes))
    db.session.add(grant)
    db.session.flush()
    audit.record(actor=actor, action="break_glass", ref_type="platform_user", ref_id=actor.id,
                 context={"event": "started", "grant_id": grant.id, "reason": reason, "minutes": minutes,
                          "expires_at": grant.expires_at})
    db.session.commit()
    return grant


def end_break_glass(*, actor: Actor) -> bool:
    """End the caller's elevation early; returns False when none was active."""
    grant = db.session.scalar(select(BreakGlassGrant).where(
        BreakGlassGrant.platform_user_id == actor.id, BreakGlassGrant.ended_at.is_(None),
        BreakGlassGrant.expires_at > func.now()).with_for_update())
    if grant is None:
        return False
    grant.ended_at = now()
    audit.record(actor=actor, action="break_glass", ref_type="platform_user", ref_id=actor.id,
                 context={"event": "ended", "grant_id": grant.id})
    db.session.commit()
    return True


def prune_login_sessions(*, keep_days: int = 30) -> int:
    """Delete sessions that expired or were revoked more than `keep_days` ago; returns how many."""
    result = db.session.execute(text("""
        DELETE FROM login_sessions
        WHERE coalesce(revoked_at, expires_at) < now() - make_interval(days => :days)
    """), {"days": keep_days})
    db.session.commit()
    return result.rowcount


def create_platform_user(*, actor: Actor, email: str, password: str, name: str, role: str) -> PlatformUser:
    """A new /system account; audited in the platform chain."""
    from app.auth.passwords import hash_password, password_problem
    from app.workspaces.roles import PLATFORM_ROLES

    email, name = email.strip(), name.strip()
    problems = {}
    if role not in PLATFORM_ROLES:
        problems["platform_role"] = f"One of: {', '.join(PLATFORM_ROLES)}."
    if "@" not in email or len(email) > 254:
        problems["email"] = "Not an e-mail address."
    if not name:
        problems["name"] = "Required."
    if problem := password_problem(password):
        problems["password"] = problem
    if problems:
        raise ValidationFailed("The platform user could not be created.", fields=problems)
    if db.session.scalar(select(func.count()).select_from(PlatformUser)
                         .where(func.lower(PlatformUser.email) == email.lower())):
        raise ValidationFailed(f"{email} already has a platform account.", fields={"email": "Already registered."})
    person = PlatformUser(email=email, name=name, role=role, password_hash=hash_password(password))
    db.session.add(person)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="platform_user", ref_id=person.id, workspace_id=None,
                 field_deltas={"email": [None, email], "role": [None, role]})
    db.session.commit()
    return person
