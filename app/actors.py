"""Who is acting: the caller every service function receives, with the request's provenance.

Routes build an `Actor` from the signed-in user (or token, or platform user); the CLI and jobs
use `Actor.system(...)`. Services read the role, scope and provenance from it and never touch
flask.request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.tenancy import TenantScope
from app.workspaces.roles import can, platform_can


@dataclass(frozen=True)
class Actor:
    kind: str  # user | platform_user | service_account | system
    id: int | None
    label: str  # email, "svc:<name>" or "system:<what>"; what the audit trail shows
    workspace_id: int | None = None
    role: str | None = None
    # tenants the actor may act on (None = all of the workspace); narrowed by the tenant switcher
    tenant_ids: tuple[int, ...] | None = None
    ip: str | None = None
    user_agent: str | None = None
    is_break_glass: bool = False
    name: str | None = None
    slug: str | None = None  # a user's slug; tokens carry it as `sub`

    @classmethod
    def system(cls, what: str = "system", *, workspace_id: int | None = None) -> Actor:
        return cls(kind="system", id=None, label=what if what.startswith("system") else f"system:{what}",
                   workspace_id=workspace_id)

    @property
    def scope(self) -> TenantScope:
        if self.kind in {"platform_user", "system"}:
            return TenantScope.whole_platform()
        return TenantScope(workspace_id=self.workspace_id, tenant_ids=self.tenant_ids)

    @property
    def subject(self) -> str:
        """What records as `created_by`: the user slug or the token's `sub`."""
        return self.slug or self.label

    def can(self, capability: str) -> bool:
        if self.kind == "system":
            return True
        if self.kind == "platform_user":
            return platform_can(self.role, capability, elevated=self.is_break_glass)
        return can(self.role, capability)

    def may_see_tenant(self, tenant_id: int | None) -> bool:
        return self.scope.allows(self.workspace_id, tenant_id)

    def with_request(self, *, ip: str | None, user_agent: str | None) -> Actor:
        return replace(self, ip=ip, user_agent=(user_agent or "")[:512] or None)
