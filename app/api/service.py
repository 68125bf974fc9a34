"""Token sign-in for API clients and service accounts, and who a presented token stands for."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, text

from app.actors import Actor
from app.api import tokens
from app.audit import service as audit
from app.auth import sessions, throttle
from app.auth.models import ServiceAccount, User
from app.auth.passwords import verify_password
from app.auth.service import BAD_CREDENTIALS
from app.errors import NotAllowed, NotFound, Unauthenticated, ValidationFailed
from app.extensions import db
from app.workspaces.models import Membership, Workspace
from app.workspaces.roles import ROLES


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    sub: str

    def as_json(self) -> dict:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in}


def create_user_token(*, email: str, password: str, workspace_slug: str | None, ip: str | None,
                      user_agent: str | None) -> IssuedToken:
    """`POST /api/v1/auth/tokens`: the same checks and throttle as the console sign-in."""
    throttle.check(realm="api", email=email, ip=ip)
    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    ok = verify_password(user.password_hash if user else None, password)
    membership = None
    if user is not None and ok and user.is_active:
        query = select(Membership).where(Membership.user_id == user.id)
        if workspace_slug:
            query = query.join(Workspace, Workspace.id == Membership.workspace_id).where(
                Workspace.slug == workspace_slug)
        membership = db.session.scalar(query.order_by(Membership.workspace_id).limit(1))
    if membership is None:
        throttle.record_failure(realm="api", email=email, ip=ip)
        audit.record(actor=Actor(kind="user", id=user.id if user else None, label=email[:254] or "(blank)",
                                 ip=ip, user_agent=user_agent),
                     action="login", ref_type="api_token", workspace_id=None,
                     context={"outcome": "failed", "realm": "api"})
        db.session.commit()
        raise Unauthenticated(BAD_CREDENTIALS)
    throttle.clear(realm="api", email=email)
    token, expires_in = tokens.issue_token(sub=user.slug, workspace_id=membership.workspace_id, kind="user",
                                           ttl_seconds=current_app.config["API_TOKEN_TTL_SECONDS"], user_id=user.id)
    audit.record(actor=Actor(kind="user", id=user.id, label=user.email, ip=ip, user_agent=user_agent),
                 action="login", ref_type="api_token", workspace_id=membership.workspace_id,
                 context={"outcome": "succeeded", "realm": "api"})
    db.session.commit()
    return IssuedToken(access_token=token, expires_in=expires_in, sub=user.slug)


_USER_ACTOR_SQL = text("""
SELECT u.id, u.email, u.name, u.slug, m.role,
       (SELECT array_agg(mt.tenant_id ORDER BY mt.tenant_id) FROM membership_tenants mt
         WHERE mt.membership_id = m.id) AS tenant_limit
FROM users u JOIN memberships m ON m.user_id = u.id AND m.workspace_id = :workspace_id
WHERE u.slug = :slug AND u.is_active
""")


def actor_for_token(claims: tokens.TokenClaims, *, ip: str | None, user_agent: str | None) -> Actor:
    """Resolve the token's subject now, so a removed member or disabled account loses access at once.

    A user token reads the revocation mark and the person's cached profile in one Redis round
    trip (the profile is dropped whenever their memberships change); when Redis does not answer,
    the request fails closed.
    """
    ua = (user_agent or "")[:512] or None
    if claims.kind == "user" and claims.user_id is not None:
        revoked, profile = sessions.revoked_and_profile(tokens.denylist_key(claims.jti), claims.user_id)
        if revoked:
            raise Unauthenticated("The token has been revoked.")
        if profile is None or profile.get("slug") != claims.sub:
            raise Unauthenticated("The token's user no longer has access.")
        membership = next((w for w in profile["workspaces"] if w[0] == claims.workspace_id), None)
        if membership is None:
            raise Unauthenticated("The token's user no longer has access.")
        return Actor(kind="user", id=profile["id"], label=profile["email"], name=profile["name"], slug=profile["slug"],
                     workspace_id=claims.workspace_id, role=membership[3],
                     tenant_ids=tuple(membership[5]) if membership[5] else None, ip=ip, user_agent=ua)
    if tokens.is_revoked(claims.jti):
        raise Unauthenticated("The token has been revoked.")
    if claims.kind == "user":
        row = db.session.execute(_USER_ACTOR_SQL, {"slug": claims.sub, "workspace_id": claims.workspace_id}).first()
        if row is None:
            raise Unauthenticated("The token's user no longer has access.")
        return Actor(kind="user", id=row.id, label=row.email, name=row.name, slug=row.slug,
                     workspace_id=claims.workspace_id, role=row.role,
                     tenant_ids=tuple(row.tenant_limit) if row.tenant_limit else None, ip=ip, user_agent=ua)
    if claims.kind == "service_account" and claims.sub.startswith("svc:"):
        account = db.session.scalar(select(ServiceAccount).where(
            ServiceAccount.workspace_id == claims.workspace_id, ServiceAccount.name == claims.sub[4:],
            ServiceAccount.is_active))
        if account is None:
            raise Unauthenticated("The token's service account no longer exists or is disabled.")
        return Actor(kind="service_account", id=account.id, label=account.subject, name=account.name,
                     workspace_id=account.workspace_id, role=account.role, ip=ip, user_agent=ua)
    raise Unauthenticated("The token is not valid.")


def revoke_current(*, claims: tokens.TokenClaims, actor: Actor) -> None:
    """`DELETE /api/v1/auth/tokens/current`: denylist the presented token; audited."""
    tokens.revoke(claims)
    audit.record(actor=actor, action="logout", ref_type="api_token", ref_id=claims.jti,
                 context={"realm": "api", "expires_at": claims.exp})
    db.session.commit()


def issue_service_token(*, name: str, workspace_slug: str, role: str, ttl_seconds: int | None = None,
                        actor: Actor | None = None) -> IssuedToken:
    """`flask tokens issue`: create or update the service account, then sign a token for it."""
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}; one of: {', '.join(ROLES)}.", fields={"role": "unknown"})
    workspace = db.session.scalar(select(Workspace).where(Workspace.slug == workspace_slug))
    if workspace is None:
        raise NotFound(f"No workspace {workspace_slug!r}.")
    name = name.strip().lower()
    account = db.session.scalar(select(ServiceAccount).where(ServiceAccount.workspace_id == workspace.id,
                                                             ServiceAccount.name == name))
    actor = actor or Actor.system("cli", workspace_id=workspace.id)
    if account is None:
        account = ServiceAccount(workspace_id=workspace.id, name=name, role=role)
        db.session.add(account)
        db.session.flush()
        audit.record(actor=actor, action="create", ref_type="service_account", ref_id=account.id,
                     workspace_id=workspace.id, field_deltas={"name": [None, name], "role": [None, role]})
    elif not account.is_active:
        raise NotAllowed(f"Service account {name!r} is disabled.")
    elif account.role != role:
        audit.record(actor=actor, action="update", ref_type="service_account", ref_id=account.id,
                     workspace_id=workspace.id, field_deltas={"role": [account.role, role]})
        account.role = role
    ttl = ttl_seconds or current_app.config["SERVICE_TOKEN_TTL_SECONDS"]
    token, expires_in = tokens.issue_token(sub=account.subject, workspace_id=workspace.id,
                                           kind="service_account", ttl_seconds=ttl)
    audit.record(actor=actor, action="create", ref_type="api_token", ref_id=account.id, workspace_id=workspace.id,
                 context={"service_account": name, "expires_in": expires_in})
    db.session.commit()
    return IssuedToken(access_token=token, expires_in=expires_in, sub=account.subject)
