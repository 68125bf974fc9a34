"""What the /system start page shows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.actors import Actor
from app.auth.models import PlatformUser, User
from app.errors import NotAllowed
from app.extensions import db
from app.workspaces.models import Tenant, Workspace


@dataclass
class PlatformOverview:
    workspaces: list[tuple[Workspace, int]]  # (workspace, tenant count)
    users: int
    platform_users: int


def overview(*, actor: Actor) -> PlatformOverview:
    if not actor.can("system.use"):
        raise NotAllowed("Platform users only.")
    rows = db.session.execute(select(Workspace, func.count(Tenant.id))
                              .outerjoin(Tenant, Tenant.workspace_id == Workspace.id)
                              .group_by(Workspace.id).order_by(Workspace.name)).all()
    return PlatformOverview(workspaces=[(w, n) for w, n in rows],
                            users=db.session.scalar(select(func.count()).select_from(User)),
                            platform_users=db.session.scalar(select(func.count()).select_from(PlatformUser)))


def workspace_choices() -> dict[str, str]:
    return {str(w.id): w.name for w in db.session.scalars(select(Workspace).order_by(Workspace.name))}
