"""`flask demo load`: the demo workspace, its tenants, one user per role and the platform users.

Idempotent: a second run finds everything in place and writes nothing (not even audit rows).
Later areas add their realistic data here through their own services.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from app.actors import Actor
from app.audit import service as audit
from app.auth import sessions
from app.auth.models import PlatformUser, User
from app.auth.passwords import hash_password, verify_password
from app.auth.service import create_platform_user
from app.extensions import db
from app.workspaces import service as workspaces
from app.workspaces.models import Membership, Tenant

WORKSPACE = ("demo", "Demo Services")
DEMO_FINDINGS_PER_TENANT = 2000
TENANTS = [("acme", "Acme Corporation"), ("globex", "Globex"), ("initech", "Initech")]
PEOPLE = {
    "end_user": "Dana Whitfield",
    "service_desk_analyst": "Sam Okafor",
    "resolver": "Priya Raman",
    "service_desk_manager": "Luis Ortega",
    "incident_manager": "Morgan Lee",
    "change_manager": "Hana Sato",
    "auditor": "Ruth Adebayo",
    "workspace_admin": "Alex Kim",
}
# a contractor who only works on one customer's incidents
LIMITED = ("contractor@demo.test", "Ken Mbeki", "resolver", ["acme"])
PLATFORM_PEOPLE = [("operator@demo.test", "Jonas Berg", "platform_operator"),
                   ("platform-admin@demo.test", "Amara Chen", "platform_admin")]


def _ensure_password(person, password: str, actor: Actor, ref_type: str, workspace_id: int | None) -> bool:
    if verify_password(person.password_hash, password):
        return False
    person.password_hash = hash_password(password)
    audit.record(actor=actor, action="update", ref_type=ref_type, ref_id=person.id, workspace_id=workspace_id,
                 field_deltas={"password": ["(previous)", "(reset by demo load)"]})
    return True


def _ensure_member(*, actor: Actor, workspace_id: int, email: str, name: str, role: str, password: str,
                   tenant_ids: list[int]) -> str:
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    created = user is None
    if created:
        user = workspaces.create_user(actor=actor, email=email, name=name, password=password, commit=False)
    else:
        _ensure_password(user, password, actor, "user", workspace_id)
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                            Membership.workspace_id == workspace_id))
    if membership is None:
        workspaces.create_membership(actor=actor, user=user, workspace_id=workspace_id, role=role,
                                     tenant_ids=tuple(tenant_ids))
        return "created" if created else "added"
    return "present"


def _ensure_alert_rule(actor: Actor) -> int:
    """A failed runbook run raises an in-app alert for the workspace admins (no mail, no webhook)."""
    from app.alerting import service as alerting

    if any(rule.event_type == "operations.run.failed" and rule.channel == "in_app"
           for rule in alerting.list_rules(actor=actor)):
        return 0
    alerting.save_rule(actor=actor, event_type="operations.run.failed", channel="in_app",
                       audience_role="workspace_admin")
    return 1


def _ensure_findings(workspace_id: int) -> int:
    """Monitoring findings with their events, a tenth of them left inconsistent for the backfill runbook."""
    from app.findings.generator import generate

    if db.session.scalar(text("SELECT EXISTS (SELECT 1 FROM findings WHERE workspace_id = :w)"), {"w": workspace_id}):
        return 0
    return generate(workspace_id=workspace_id, per_tenant=DEMO_FINDINGS_PER_TENANT, broken_ratio=0.1).findings


def load_demo(*, password: str = "demo-password") -> dict:
    """Create or complete the demo data; returns what it did, for the CLI to print."""
    system = Actor.system("demo-load")
    workspace, created = workspaces.ensure_workspace(slug=WORKSPACE[0], name=WORKSPACE[1], actor=system)
    actor = Actor(kind="system", id=None, label="system:demo-load", workspace_id=workspace.id,
                  role="workspace_admin")
    tenant_ids = {}
    for slug, name in TENANTS:
        tenant = db.session.scalar(select(Tenant).where(Tenant.workspace_id == workspace.id, Tenant.slug == slug))
        if tenant is None:
            tenant = workspaces.create_tenant(actor=actor, slug=slug, name=name, commit=False)
        tenant_ids[slug] = tenant.id

    members = {}
    for role, name in PEOPLE.items():
        email = f"{role}@demo.test"
        members[email] = _ensure_member(actor=actor, workspace_id=workspace.id, email=email, name=name, role=role,
                                        password=password, tenant_ids=[])
    email, name, role, limited_to = LIMITED
    members[email] = _ensure_member(actor=actor, workspace_id=workspace.id, email=email, name=name, role=role,
                                    password=password, tenant_ids=[tenant_ids[s] for s in limited_to])
    db.session.commit()
    sessions.invalidate_workspace_profiles(workspace.id)

    platform = {}
    for email, name, role in PLATFORM_PEOPLE:
        person = db.session.scalar(select(PlatformUser).where(func.lower(PlatformUser.email) == email))
        if person is None:
            create_platform_user(actor=system, email=email, password=password, name=name, role=role)
            platform[email] = "created"
        else:
            platform[email] = "reset password" if _ensure_password(person, password, system, "platform_user",
                                                                   None) else "present"
    db.session.commit()
    alert_rules = _ensure_alert_rule(actor)
    from app.incidents.demo import load_demo_incidents

    incidents = load_demo_incidents(workspace_id=workspace.id)
    findings = _ensure_findings(workspace.id)
    return {"workspace": WORKSPACE[0], "workspace_created": created, "tenants": list(tenant_ids),
            "users": members, "platform_users": platform, "incidents_created": incidents,
            "alert_rules_created": alert_rules, "findings_created": findings, "password": password}
