"""Demo incidents: a few hundred, across tenants and every state, made through the real services
(so their timelines, communications, reviews and audit trail are what the product would write).

Deterministic (a fixed seed) and idempotent: nothing is added when the workspace has incidents.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.actors import Actor
from app.auth.models import User
from app.changes import service as changes
from app.extensions import db
from app.incidents import service, sla
from app.incidents.models import Incident
from app.reviews import service as reviews
from app.workspaces.models import Membership, Tenant, Workspace

CATALOG = [
    ("software", "Checkout API p99 latency above 2 s", "checkout-api", ["customer-facing", "latency"]),
    ("software", "Payment confirmations delayed for card payments", "payments", ["customer-facing", "payments"]),
    ("security", "Spike of failed VPN logins from one ASN", "vpn-gateway", ["security", "auth"]),
    ("hardware", "Disk almost full on db-replica-3", "orders-db", ["storage"]),
    ("performance", "Credit risk model PSI above 0.25 on income features", "credit-risk-v3", ["ml", "drift"]),
    ("software", "Nightly payroll export job failed", "payroll-export", ["batch"]),
    ("performance", "Search results take 8 s for some queries", "search", ["latency", "customer-facing"]),
    ("other", "Office Wi-Fi drops every few minutes on floor 3", "office-network", ["facilities"]),
    ("software", "Mobile app crash on launch after 5.2 release", "mobile-app", ["customer-facing", "release"]),
    ("security", "Expired TLS certificate on partner API", "partner-api", ["tls", "partner"]),
    ("performance", "Recommendation model returns empty lists", "recs-model", ["ml"]),
    ("hardware", "Printer fleet offline in warehouse B", "warehouse-printing", ["facilities"]),
    ("software", "E-mail notifications not sent since 09:00", "notifications", ["email"]),
    ("software", "SSO login loop for Safari users", "sso", ["auth", "customer-facing"]),
    ("performance", "Kafka consumer lag growing on orders topic", "orders-stream", ["streaming"]),
]
VENDORS = [("CloudHost Inc.", "vendor_portal"), ("NetLink Carrier", "phone"), ("PayGate", "API"),
           ("CertAuthority", "email")]
# target status → share of demo incidents
MIX = [("closed", 0.50), ("resolved", 0.14), ("open", 0.09), ("investigating", 0.10), ("escalated", 0.06),
       ("pending_vendor", 0.05), ("mitigated", 0.06)]


def _actor(user: User, role: str, workspace_id: int) -> Actor:
    return Actor(kind="user", id=user.id, label=user.email, slug=user.slug, name=user.name,
                 workspace_id=workspace_id, role=role)


def load_demo_incidents(*, workspace_id: int, count: int = 300, seed: int = 7) -> int:
    workspace = db.session.get(Workspace, workspace_id)
    if (workspace.settings or {}).get("demo_incidents_loaded"):
        return 0
    rng = random.Random(seed)
    people = {m.role: _actor(u, m.role, workspace_id) for m, u in db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id, ~Membership.tenant_links.any()))}
    analyst, resolver = people["service_desk_analyst"], people["resolver"]
    manager, desk_manager = people["incident_manager"], people["service_desk_manager"]
    tenants = list(db.session.scalars(select(Tenant.slug).where(Tenant.workspace_id == workspace_id)
                                      .order_by(Tenant.id)))
    monitor = Actor.system("alertmanager", workspace_id=workspace_id)
    now = datetime.now(UTC)
    approved = _demo_changes(people, tenants, rng)
    made = 0
    for _ in range(count):
        target = rng.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
        category, title, service_name, labels = rng.choice(CATALOG)
        severity = rng.choices(["p1", "p2", "p3", "p4"], weights=[0.07, 0.2, 0.45, 0.28])[0]
        tenant = rng.choice(tenants)
        # open work is recent, history goes back six weeks
        age = timedelta(minutes=rng.randint(3, 600)) if target == "open" else \
            timedelta(hours=rng.randint(2, 24 * (4 if target not in ("resolved", "closed") else 42)))
        at = now - age
        automated = rng.random() < 0.3
        reporter = monitor if automated else rng.choice([analyst, people["end_user"], analyst])
        incident = service.create_incident(
            actor=reporter, at=at, trigger_source=rng.choice(["alertmanager", "pagerduty"]) if automated else "manual",
            data={"title": title, "severity": severity, "tenant": tenant, "affected_service": service_name,
                  "labels": labels + [f"region:{rng.choice(['eu', 'us', 'apac'])}"],
                  "description": f"**What users see:** {title.lower()}.\n\nFirst noticed on `{service_name}`."})
        made += 1
        if target == "open":
            continue
        step = _Clock(at, rng, severity)
        _run(incident, analyst, "acknowledge", {"team": rng.choice(["service_desk", "L1"])}, step.next(late=0.15))
        _run(incident, analyst, "categorize", {"category": category, "subcategory": service_name}, step.next())
        if rng.random() < 0.6:
            _run(incident, resolver, "diagnose", {"steps": f"Checked dashboards and recent deploys of {service_name}.",
                                                  "workaround": "Fail over to the secondary region."
                                                  if rng.random() < 0.4 else None}, step.next())
        if target == "investigating":
            continue
        if target in ("escalated", "closed", "resolved") and rng.random() < 0.5 or target == "escalated":
            _run(incident, analyst, "escalate", {"team": rng.choice(["L2", "L3", "devops"]),
                                                 "reason": "Needs application expertise."}, step.next())
            if target == "escalated":
                continue
            _run(incident, resolver, "acknowledge", {"team": incident.assigned_team}, step.next())
        if target == "pending_vendor" or rng.random() < 0.15:
            vendor, method = rng.choice(VENDORS)
            _run(incident, resolver, "engage_vendor", {"vendor": vendor, "contact_method": method,
                                                       "reference": f"VT-{rng.randint(10000, 99999)}"}, step.next())
            if target == "pending_vendor":
                continue
            _run(incident, resolver, "acknowledge", {}, step.next())
        if rng.random() < 0.5:
            _run(incident, analyst, "communicate", {"recipients": "stakeholders", "template": "status_update",
                                                   "message": f"We are working on {incident.reference}; next "
                                                              f"update within the hour."}, step.next())
        if target == "mitigated" or rng.random() < 0.3:
            _run(incident, resolver, "mitigate", {"summary": "Traffic moved to the healthy region."}, step.next())
            if target == "mitigated":
                continue
        change = approved.get(incident.tenant_id)
        if change is not None and rng.random() < 0.2:
            _run(incident, resolver, "link_change", {"change_id": str(change)}, step.next())
        _run(incident, resolver, "resolve", {"summary": f"Rolled back the faulty configuration of {service_name} "
                                                        f"and confirmed recovery."}, step.next())
        if target == "resolved":
            continue
        if incident.priority == "high":
            _review(incident, manager, rng)
        closer = manager if incident.priority == "high" else rng.choice([analyst, desk_manager])
        _run(incident, closer, "close", {"notes": "Confirmed with the reporter; monitoring is green."}, step.next())
    sla.scan_breaches(now=now)  # live breaches: timeline, escalation, alerts
    sla.recompute_workspace(workspace_id=workspace_id)  # and the history's breach flags
    workspace = db.session.get(Workspace, workspace_id)
    workspace.settings = {**(workspace.settings or {}), "demo_incidents_loaded": True}
    db.session.commit()
    return made


class _Clock:
    """Plausible times between steps: inside the SLA most of the time, late sometimes."""

    def __init__(self, start: datetime, rng: random.Random, severity: str) -> None:
        self.at, self.rng = start, rng
        self.scale = {"p1": 3, "p2": 10, "p3": 40, "p4": 120}[severity]

    def next(self, late: float = 0.0) -> datetime:
        minutes = self.rng.randint(1, self.scale) * (8 if self.rng.random() < late else 1)
        self.at = min(self.at + timedelta(minutes=minutes), datetime.now(UTC) - timedelta(seconds=5))
        return self.at


def _run(incident: Incident, actor: Actor, action: str, data: dict, at: datetime) -> None:
    service.perform(actor=actor, incident_id=incident.id, action=action, at=at,
                    data={k: v for k, v in data.items() if v is not None}, strict=False)


def _review(incident: Incident, manager: Actor, rng: random.Random) -> None:
    reviews.save_review(actor=manager, incident_id=incident.id,
                        summary=f"{incident.title}. Impact lasted until the rollback; detection came from "
                                f"{'monitoring' if incident.trigger_source != 'manual' else 'a user report'}.",
                        contributing_factors="A configuration change without a canary stage; alert thresholds too "
                                             "loose to catch the early degradation.",
                        lessons="Add a canary stage and tighten the latency alert.")
    reviews.add_action_item(actor=manager, incident_id=incident.id, description="Add a canary stage to the pipeline",
                            owner=rng.choice(["resolver", "incident_manager"]),
                            due_date=date.today() + timedelta(days=rng.randint(-5, 20)))
    reviews.sign_off(actor=manager, incident_id=incident.id)


def _demo_changes(people: dict[str, Actor], tenants: list[str], rng: random.Random) -> dict[int, object]:
    """A few change requests per tenant, most approved by the change manager; tenant id → one approved id."""
    approved = {}
    for slug in tenants:
        for summary, risk in (("Raise connection pool limits", "low"), ("Roll back release 5.2", "medium"),
                              ("Rotate partner TLS certificate", "high")):
            change = changes.create_change(actor=people["resolver"], tenant=slug, summary=summary, risk=risk,
                                           rollback_plan="Revert the configuration commit.")
            if rng.random() < 0.75:
                changes.decide(actor=people["change_manager"], change_id=change.id, approve=True,
                               note="Reviewed in CAB.")
                approved.setdefault(change.tenant_id, change.id)
    return approved
