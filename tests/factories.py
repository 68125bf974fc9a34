"""Rows for tests, built directly (fast) but with the same rules the services enforce."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.actors import Actor
from app.auth.models import PlatformUser, User
from app.auth.passwords import hash_password
from app.extensions import db
from app.workspaces.models import Membership, MembershipTenant, Tenant, Workspace
from app.workspaces.roles import ROLES

PASSWORD = "correct horse battery"
_hash_cache: dict[str, str] = {}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def password_hash(password: str = PASSWORD) -> str:
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    return _hash_cache[password]


def make_workspace(name: str | None = None) -> Workspace:
    slug = unique("ws")
    workspace = Workspace(slug=slug, name=name or f"Workspace {slug}")
    db.session.add(workspace)
    db.session.commit()
    return workspace


def make_tenant(workspace: Workspace, slug: str | None = None) -> Tenant:
    slug = slug or unique("t")
    tenant = Tenant(workspace_id=workspace.id, slug=slug, name=f"Tenant {slug}")
    db.session.add(tenant)
    db.session.commit()
    return tenant


def make_user(workspace: Workspace | None = None, role: str = "service_desk_analyst",
              tenants: list[Tenant] | None = None, password: str = PASSWORD, active: bool = True) -> User:
    slug = unique("user")
    user = User(email=f"{slug}@example.test", slug=slug, name=slug.replace("-", " ").title(),
                password_hash=password_hash(password), is_active=active)
    db.session.add(user)
    db.session.flush()
    if workspace is not None:
        membership = Membership(user_id=user.id, workspace_id=workspace.id, role=role)
        membership.tenant_links = [MembershipTenant(tenant_id=t.id) for t in tenants or []]
        db.session.add(membership)
    db.session.commit()
    return user


def make_platform_user(role: str = "platform_operator", password: str = PASSWORD) -> PlatformUser:
    slug = unique("op")
    person = PlatformUser(email=f"{slug}@platform.test", name=slug, role=role, password_hash=password_hash(password))
    db.session.add(person)
    db.session.commit()
    return person


@dataclass
class World:
    workspace: Workspace
    tenant_a: Tenant
    tenant_b: Tenant
    users: dict[str, User] = field(default_factory=dict)
    limited: User | None = None  # an auditor limited to tenant_a

    def actor(self, role: str = "workspace_admin", tenant_ids: tuple[int, ...] | None = None) -> Actor:
        user = self.users[role]
        return Actor(kind="user", id=user.id, label=user.email, slug=user.slug, workspace_id=self.workspace.id,
                     role=role, tenant_ids=tenant_ids)

    def email(self, role: str) -> str:
        return self.users[role].email


def build_world() -> World:
    workspace = make_workspace()
    world = World(workspace=workspace, tenant_a=make_tenant(workspace), tenant_b=make_tenant(workspace))
    for role in ROLES:
        world.users[role] = make_user(workspace, role)
    world.limited = make_user(workspace, "auditor", tenants=[world.tenant_a])
    return world
