"""Signing in and out of the console and /system, break-glass elevation, platform accounts.

Sessions themselves (storage, loading, revocation) live in app.auth.sessions.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from app.actors import Actor
from app.audit import service as audit
from app.auth import sessions, throttle
from app.auth.models import BreakGlassGrant, PlatformUser, User
from app.auth.passwords import verify_password
from app.auth.sessions import SignedIn
from app.errors import NotAllowed, Unauthenticated, ValidationFailed
from app.extensions import db
from app.workspaces.models import Membership

BAD_CREDENTIALS = "The e-mail address or password is not right."


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
    token = sessions.start_session(kind=sessions.USER, person_id=user.id, workspace_id=workspace_id, ip=ip,
                                   user_agent=user_agent)
    user.last_login_at = sessions.now()
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
    token = sessions.start_session(kind=sessions.PLATFORM, person_id=person.id, workspace_id=None, ip=ip,
                                   user_agent=user_agent)
    person.last_login_at = sessions.now()
    audit.record(actor=Actor(kind="platform_user", id=person.id, label=person.email, ip=ip, user_agent=ua),
                 action="login", ref_type="platform_user", ref_id=person.id,
                 context={"outcome": "succeeded", "realm": "system"})
    db.session.commit()
    return token


def sign_out(*, person: SignedIn, ip: str | None, user_agent: str | None) -> None:
    """Revoke the session, so the same cookie (or a copy) no longer signs anyone in."""
    sessions.revoke_session(person)
    actor = person.actor(ip=ip, user_agent=user_agent)
    audit.record(actor=actor, action="logout", ref_type=person.kind, ref_id=person.id,
                 workspace_id=person.workspace_id, context={"realm": "system" if person.is_platform else "console"})
    db.session.commit()


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
        BreakGlassGrant.expires_at > func.now()).with_for_update().execution_options(populate_existing=True))
    if active is not None:
        raise ValidationFailed("You are already elevated; end it before starting another.")
    grant = BreakGlassGrant(platform_user_id=actor.id, reason=reason[:1000],
                            expires_at=sessions.now() + timedelta(minutes=minutes))
    db.session.add(grant)
    db.session.flush()
    audit.record(actor=actor, action="break_glass", ref_type="platform_user", ref_id=actor.id,
                 context={"event": "started", "grant_id": grant.id, "reason": reason, "minutes": minutes,
                          "expires_at": grant.expires_at})
    db.session.commit()
    sessions.invalidate_profiles(sessions.PLATFORM, [actor.id])
    return grant


def end_break_glass(*, actor: Actor) -> bool:
    """End the caller's elevation early; returns False when none was active."""
    grant = db.session.scalar(select(BreakGlassGrant).where(
        BreakGlassGrant.platform_user_id == actor.id, BreakGlassGrant.ended_at.is_(None),
        BreakGlassGrant.expires_at > func.now()).with_for_update().execution_options(populate_existing=True))
    if grant is None:
        return False
    grant.ended_at = sessions.now()
    audit.record(actor=actor, action="break_glass", ref_type="platform_user", ref_id=actor.id,
                 context={"event": "ended", "grant_id": grant.id})
    db.session.commit()
    sessions.invalidate_profiles(sessions.PLATFORM, [actor.id])
    return True


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
