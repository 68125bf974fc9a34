"""Tenant scoping: the one place that limits every ORM query to the caller's workspace and tenants.

Each request puts a `TenantScope` on the database session (`apply_scope`); a session event adds
the matching criteria to every SELECT, UPDATE and DELETE that touches a workspace- or
tenant-owned model, so a route cannot forget it. A row outside the scope simply is not found,
which the routes turn into the same 404 as a row that does not exist.

Inside a request the default is to see nothing. Outside requests (CLI, jobs, tests of services)
there is no scope unless one is applied, and queries see everything, as system work must.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import ForeignKey, event, false
from sqlalchemy.orm import Mapped, Session, mapped_column, with_loader_criteria

SCOPE_KEY = "tenant_scope"


@dataclass(frozen=True)
class TenantScope:
    """What one caller may see: one workspace, and all its tenants or only some.

    `tenant_ids=None` means every tenant of the workspace, including workspace-level rows whose
    `tenant_id` is NULL; a tuple means only those tenants' rows.
    """

    workspace_id: int | None
    tenant_ids: tuple[int, ...] | None = None
    platform: bool = False

    @classmethod
    def nothing(cls) -> TenantScope:
        return cls(workspace_id=None, tenant_ids=())

    @classmethod
    def whole_platform(cls) -> TenantScope:
        return cls(workspace_id=None, tenant_ids=None, platform=True)

    def allows(self, workspace_id: int | None, tenant_id: int | None) -> bool:
        if self.platform:
            return True
        if workspace_id is None or workspace_id != self.workspace_id:
            return False
        return self.tenant_ids is None or tenant_id in self.tenant_ids


class WorkspaceOwned:
    """Rows that belong to a workspace and, optionally, one of its tenants (NULL = workspace-level)."""

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))


class TenantOwned(WorkspaceOwned):
    """Rows that always belong to one tenant."""

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))


def apply_scope(session: Session, scope: TenantScope) -> None:
    session.info[SCOPE_KEY] = scope


def current_scope(session: Session) -> TenantScope | None:
    return session.info.get(SCOPE_KEY)


@functools.lru_cache(maxsize=4096)
def _scope_options(scope: TenantScope):
    """Loader criteria for one scope; plain lambdas over ints and tuples so SQLAlchemy caches them.

    Built once per distinct scope: a scope is a small frozen value, and the options are immutable.
    """
    from app.workspaces.models import Tenant

    ws_id, tenant_ids = scope.workspace_id, scope.tenant_ids
    if ws_id is None:
        owned = lambda cls: false()  # noqa: E731
        tenants = lambda cls: false()  # noqa: E731
    elif tenant_ids is None:
        owned = lambda cls: cls.workspace_id == ws_id  # noqa: E731
        tenants = lambda cls: cls.workspace_id == ws_id  # noqa: E731
    else:
        owned = lambda cls: (cls.workspace_id == ws_id) & cls.tenant_id.in_(tenant_ids)  # noqa: E731
        tenants = lambda cls: (cls.workspace_id == ws_id) & cls.id.in_(tenant_ids)  # noqa: E731
    return (with_loader_criteria(WorkspaceOwned, owned, include_aliases=True),
            with_loader_criteria(Tenant, tenants, include_aliases=True))


def install_scoping(session_class) -> None:
    """Register the criteria hook on the session class (once per process)."""
    if getattr(session_class, "_opsdesk_scoping", False):
        return
    session_class._opsdesk_scoping = True

    @event.listens_for(session_class, "do_orm_execute")
    def _add_tenant_criteria(state):
        scope = state.session.info.get(SCOPE_KEY)
        if scope is None or scope.platform:
            return
        if not (state.is_select or state.is_update or state.is_delete):
            return
        if state.is_column_load or state.is_relationship_load:
            # lazy loads of a row already in scope: the parent query was filtered
            return
        state.statement = state.statement.options(*_scope_options(scope))


def scope_sql(session: Session, alias: str) -> tuple[str, str, dict]:
    """The same scope as a SQL predicate, for the few hot list queries written as SQL.

    Returns (kind, predicate, params); `kind` names the predicate's shape so callers can cache the
    statement text per shape. Outside requests (no scope) and for the platform, no restriction.
    """
    scope = current_scope(session)
    if scope is None or scope.platform:
        return "all", "TRUE", {}
    if scope.workspace_id is None:
        return "none", "FALSE", {}
    if scope.tenant_ids is None:
        return "workspace", f"{alias}.workspace_id = :scope_workspace", {"scope_workspace": scope.workspace_id}
    return ("tenants", f"{alias}.workspace_id = :scope_workspace AND {alias}.tenant_id = ANY(:scope_tenants)",
            {"scope_workspace": scope.workspace_id, "scope_tenants": list(scope.tenant_ids)})
