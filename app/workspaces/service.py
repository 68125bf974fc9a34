"""Workspaces, tenants and members: creating them and changing who may do what.

Every change is audited in the same transaction; role changes show in the privileged-changes
view. A workspace never loses its last workspace admin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.actors import Actor
from app.audit import service as audit
from app.auth import sessions
from app.auth.models import User
from app.auth.passwords import hash_password, password_problem
from app.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from app.extensions import db
from app.workspaces.models import Membership, MembershipTenant, Tenant, Workspace
from app.workspaces.roles import ROLES

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MEMBERS_PAGE = 50


def _require(actor: Actor, capability: str) -> None:
    if not actor.can(capability):
        raise NotAllowed("Your role does not allow this.")


def get_workspace_by_slug(slug: str) -> Workspace:
    workspace = db.session.scalar(select(Workspace).where(Workspace.slug == slug))
    if workspace is None:
        raise NotFound(f"No workspace {slug!r}.")
    return workspace


def get_tenant_by_slug(*, workspace_id: int, slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.workspace_id == workspace_id, Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"No tenant {slug!r} in this workspace.")
    return tenant


def list_tenants(*, actor: Actor) -> list[Tenant]:
    """Tenants the actor may see (the scope filter applies inside requests)."""
    query = select(Tenant).where(Tenant.workspace_id == actor.workspace_id)
    if actor.tenant_ids is not None:
        query = query.where(Tenant.id.in_(actor.tenant_ids))
    return list(db.session.scalars(query.order_by(Tenant.name)))


def ensure_workspace(*, slug: str, name: str, actor: Actor) -> tuple[Workspace, bool]:
    """The workspace with this slug, created if missing; (workspace, created). Caller commits."""
    if not SLUG_RE.match(slug):
        raise ValidationFailed("A slug is lowercase letters, digits and dashes.", fields={"slug": "bad format"})
    workspace = db.session.scalar(select(Workspace).where(Workspace.slug == slug))
    if workspace is not None:
        return workspace, False
    workspace = Workspace(slug=slug, name=name)
    db.session.add(workspace)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="workspace", ref_id=workspace.id,
                 workspace_id=workspace.id, field_deltas={"slug": [None, slug], "name": [None, name]})
    return workspace, True


def create_tenant(*, actor: Actor, slug: str, name: str, commit: bool = True) -> Tenant:
    _require(actor, "tenants.manage")
    slug, name = (slug or "").strip().lower(), (name or "").strip()
    problems = {}
    if not SLUG_RE.match(slug):
        problems["slug"] = "Lowercase letters, digits and dashes; starts with a letter or digit."
    if not name or len(name) > 200:
        problems["name"] = "Give a name of at most 200 characters."
    if problems:
        raise ValidationFailed("The tenant could not be created.", fields=problems)
    exists = db.session.scalar(select(func.count()).select_from(Tenant).where(
        Tenant.workspace_id == actor.workspace_id, Tenant.slug == slug))
    if exists:
        raise ValidationFailed("That slug is taken in this workspace.", fields={"slug": "Already in use."})
    tenant = Tenant(workspace_id=actor.workspace_id, slug=slug, name=name)
    db.session.add(tenant)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="tenant", ref_id=tenant.id, tenant_id=tenant.id,
                 field_deltas={"slug": [None, slug], "name": [None, name]})
    if commit:
        db.session.commit()
        sessions.invalidate_workspace_profiles(actor.workspace_id)
    return tenant


# -- members ---------------------------------------------------------------------------------------

@dataclass
class MemberPage:
    members: list[Membership]
    next_after: str | None
    tenant_names: dict[int, str]


def list_members(*, actor: Actor, q: str | None = None, role: str | None = None, after: str | None = None,
                 limit: int = MEMBERS_PAGE) -> MemberPage:
    """Members of the actor's workspace by e-mail, keyset-paged on the lower-cased address."""
    _require(actor, "members.view")
    query = (select(Membership).join(User, User.id == Membership.user_id)
             .where(Membership.workspace_id == actor.workspace_id)
             .options(selectinload(Membership.user)))
    if q:
        pattern = f"%{q.strip().lower()}%"
        query = query.where(func.lower(User.email).like(pattern) | func.lower(User.name).like(pattern))
    if role:
        query = query.where(Membership.role == role)
    if after:
        query = query.where(func.lower(User.email) > after.lower())
    rows = list(db.session.scalars(query.order_by(func.lower(User.email)).limit(limit + 1)))
    members = rows[:limit]
    tenant_names = dict(db.session.execute(select(Tenant.id, Tenant.name)
                                           .where(Tenant.workspace_id == actor.workspace_id)).all())
    return MemberPage(members=members, tenant_names=tenant_names,
                      next_after=members[-1].user.email.lower() if len(rows) > limit else None)


def _check_role_and_tenants(actor: Actor, role: str, tenant_ids: list[int]) -> tuple[int, ...]:
    problems = {}
    if role not in ROLES:
        problems["role"] = "Choose one of the roles."
    ids = tuple(sorted(set(tenant_ids)))
    if ids:
        known = set(db.session.scalars(select(Tenant.id).where(Tenant.workspace_id == actor.workspace_id,
                                                               Tenant.id.in_(ids))))
        if known != set(ids):
            problems["tenant_ids"] = "Only tenants of this workspace."
    if problems:
        raise ValidationFailed("The member could not be saved.", fields=problems)
    return ids


def _set_tenants(membership: Membership, ids: tuple[int, ...]) -> None:
    wanted = set(ids)
    for link in list(membership.tenant_links):
        if link.tenant_id not in wanted:
            membership.tenant_links.remove(link)
    present = {link.tenant_id for link in membership.tenant_links}
    membership.tenant_links.extend(MembershipTenant(tenant_id=t) for t in sorted(wanted - present))


def add_member(*, actor: Actor, email: str, name: str | None, role: str, tenant_ids: list[int],
               password: str | None) -> Membership:
    """Add a person to the workspace; a new address needs a name and an initial password."""
    _require(actor, "members.manage")
    email = (email or "").strip()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ValidationFailed("Enter a valid e-mail address.", fields={"email": "Not an e-mail address."})
    ids = _check_role_and_tenants(actor, role, tenant_ids)
    user = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if user is None:
        user = create_user(actor=actor, email=email, name=name or "", password=password or "", commit=False)
    elif db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.user_id == user.id, Membership.workspace_id == actor.workspace_id)):
        raise ValidationFailed(f"{email} is already a member.", fields={"email": "Already a member."})
    membership = create_membership(actor=actor, user=user, workspace_id=actor.workspace_id, role=role,
                                   tenant_ids=ids)
    db.session.commit()
    sessions.invalidate_profiles(sessions.USER, [user.id])
    return membership


def create_membership(*, actor: Actor, user: User, workspace_id: int, role: str,
                      tenant_ids: tuple[int, ...]) -> Membership:
    """The membership row and its audit event (the caller has checked role and tenants, and commits)."""
    membership = Membership(user=user, workspace_id=workspace_id, role=role)
    _set_tenants(membership, tuple(sorted(tenant_ids)))
    db.session.add(membership)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="membership", ref_id=membership.id, workspace_id=workspace_id,
                 field_deltas={"user": [None, user.email], "role": [None, role],
                               "tenant_ids": [None, sorted(tenant_ids) or "all"]})
    return membership


def _member(actor: Actor, membership_id: int) -> Membership:
    membership = db.session.scalar(select(Membership).where(Membership.id == membership_id,
                                                            Membership.workspace_id == actor.workspace_id)
                                   .options(selectinload(Membership.user)).with_for_update()
                                   .execution_options(populate_existing=True))
    if membership is None:
        raise NotFound("No such member in this workspace.")
    return membership


def _admins_left(actor: Actor, excluding: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.workspace_id == actor.workspace_id, Membership.role == "workspace_admin",
        Membership.id != excluding))


def change_member(*, actor: Actor, membership_id: int, role: str, tenant_ids: list[int]) -> Membership:
    """Change a member's role and tenant limits; audited as a privileged `update`."""
    _require(actor, "members.manage")
    ids = _check_role_and_tenants(actor, role, tenant_ids)
    membership = _member(actor, membership_id)
    if membership.role == "workspace_admin" and role != "workspace_admin" and _admins_left(actor, membership.id) == 0:
        raise Conflict("This is the workspace's last admin; make someone else admin first.")
    before = {"role": membership.role, "tenant_ids": list(membership.tenant_ids or ()) or "all"}
    after = {"role": role, "tenant_ids": list(ids) or "all"}
    changes = audit.deltas(before, after)
    if not changes:
        return membership
    membership.role = role
    _set_tenants(membership, ids)
    audit.record(actor=actor, action="update", ref_type="membership", ref_id=membership.id,
                 field_deltas=changes, context={"user": membership.user.email})
    db.session.commit()
    sessions.invalidate_profiles(sessions.USER, [membership.user_id])
    return membership


def remove_member(*, actor: Actor, membership_id: int) -> None:
    """Take someone out of the workspace; their other workspaces are untouched."""
    _require(actor, "members.manage")
    membership = _member(actor, membership_id)
    if membership.role == "workspace_admin" and _admins_left(actor, membership.id) == 0:
        raise Conflict("This is the workspace's last admin; make someone else admin first.")
    if membership.user_id == actor.id:
        raise Conflict("You cannot remove yourself; ask another admin.")
    audit.record(actor=actor, action="update", ref_type="membership", ref_id=membership.id,
                 field_deltas={"role": [membership.role, None], "member": [True, False]},
                 context={"user": membership.user.email})
    db.session.delete(membership)
    db.session.commit()
    sessions.invalidate_profiles(sessions.USER, [membership.user_id])


# -- users ------------------------------------------------------------------------------------------

def slug_for_email(email: str) -> str:
    base = re.sub(r"[^a-z0-9._-]+", "-", email.split("@", 1)[0].lower()).strip("-._") or "user"
    base = base[:60]
    slug, n = base, 1
    while db.session.scalar(select(func.count()).select_from(User).where(User.slug == slug)):
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_user(*, actor: Actor, email: str, name: str, password: str, commit: bool = True) -> User:
    email, name = email.strip(), name.strip()
    problems = {}
    if not EMAIL_RE.match(email) or len(email) > 254:
        problems["email"] = "Not an e-mail address."
    if not name:
        problems["name"] = "A new person needs a name."
    problem = password_problem(password)
    if problem:
        problems["password"] = problem
    if problems:
        raise ValidationFailed("The account could not be created.", fields=problems)
    if db.session.scalar(select(func.count()).select_from(User).where(func.lower(User.email) == email.lower())):
        raise ValidationFailed(f"{email} already has an account.", fields={"email": "Already registered."})
    user = User(email=email, name=name, slug=slug_for_email(email), password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record(actor=actor, action="create", ref_type="user", ref_id=user.id,
                 field_deltas={"email": [None, email], "name": [None, name]})
    if commit:
        db.session.commit()
    return user


def create_member_account(*, actor: Actor, email: str, password: str, name: str, workspace_slug: str, role: str,
                          tenant_slugs: list[str]) -> Membership:
    """`flask users create`: a new account and its membership, in one transaction."""
    workspace = get_workspace_by_slug(workspace_slug)
    tenant_ids = [get_tenant_by_slug(workspace_id=workspace.id, slug=slug).id for slug in tenant_slugs]
    scoped = Actor(kind=actor.kind, id=actor.id, label=actor.label, workspace_id=workspace.id)
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}; one of: {', '.join(ROLES)}.", fields={"role": "unknown"})
    user = create_user(actor=scoped, email=email, name=name, password=password, commit=False)
    membership = create_membership(actor=scoped, user=user, workspace_id=workspace.id, role=role,
                                   tenant_ids=tuple(tenant_ids))
    db.session.commit()
    sessions.invalidate_profiles(sessions.USER, [user.id])
    return membership


def next_reference_number(*, workspace_id: int, kind: str, start: int = 1000) -> int:
    """The next human number of a kind in a workspace; concurrent callers queue on the row lock."""
    from sqlalchemy import text

    return db.session.scalar(text("""
        INSERT INTO reference_counters (workspace_id, kind, last_number) VALUES (:ws, :kind, :start + 1)
        ON CONFLICT (workspace_id, kind) DO UPDATE SET last_number = reference_counters.last_number + 1
        RETURNING last_number
    """), {"ws": workspace_id, "kind": kind, "start": start})


def tenant_for(*, actor: Actor, tenant: str | int | None, problems: dict[str, str]) -> Tenant | None:
    """The tenant an actor names (slug or id) if it is in their view; else note a problem."""
    if tenant in (None, ""):
        problems["tenant"] = "required"
        return None
    query = select(Tenant).where(Tenant.workspace_id == actor.workspace_id)
    if isinstance(tenant, int):  # console forms send ids, the API sends slugs
        query = query.where(Tenant.id == tenant)
    else:
        query = query.where(Tenant.slug == str(tenant))
    found = db.session.scalar(query)
    if found is None or not actor.may_see_tenant(found.id):
        problems["tenant"] = "unknown tenant"
        return None
    return found
