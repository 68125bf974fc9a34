"""Benchmark data, made once and kept: a workspace with 10 tenants, an auditor, and N audit rows.

Rows go in through the real trigger (hash chain and all), 100,000 per statement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, text

WORKSPACE = "bench"
PASSWORD = "bench-password-123"
AUDITOR = "auditor@bench.test"
BATCH = 100_000

INSERT_AUDIT = text("""
INSERT INTO audit_events (workspace_id, tenant_id, action, ref_type, ref_id, actor_type, actor_id, actor_label,
                          field_deltas, context, ip, user_agent, is_privileged, occurred_at)
SELECT :workspace_id,
       (:tenant_ids)[1 + (g % cardinality(:tenant_ids))],
       (ARRAY['update', 'update', 'update', 'create', 'escalate', 'resolve', 'notify', 'read', 'link',
              'close'])[1 + (g % 10)],
       'incident', 'INC-' || (g / 7), 'user', :actor_id, 'analyst' || (g % 40) || '@bench.test',
       jsonb_build_object('status', jsonb_build_array('open', 'investigating')),
       jsonb_build_object('source', 'bench'), '10.0.' || (g % 200) || '.' || (g % 250), 'opsdesk-bench',
       (g % 97 = 0), now() - make_interval(secs => (:total - g) * 3)
FROM generate_series(:start, :stop) AS g
""")


@dataclass(frozen=True)
class AuditFixture:
    workspace_id: int
    auditor_email: str
    password: str
    audit_rows: int


def ensure_audit_fixture(database_url: str, *, rows: int, log: Callable[[str], None]) -> AuditFixture:
    from app import create_app
    from app.actors import Actor
    from app.audit.models import AuditEvent
    from app.auth.models import User
    from app.extensions import db
    from app.workspaces import service as workspaces
    from app.workspaces.models import Membership, Tenant

    app = create_app()
    with app.app_context():
        system = Actor.system("bench")
        workspace, _ = workspaces.ensure_workspace(slug=WORKSPACE, name="Benchmark Services", actor=system)
        admin = Actor(kind="system", id=None, label="system:bench", workspace_id=workspace.id)
        for n in range(10):
            slug = f"tenant-{n:02d}"
            if db.session.scalar(select(Tenant).where(Tenant.workspace_id == workspace.id, Tenant.slug == slug)) is None:
                workspaces.create_tenant(actor=admin, slug=slug, name=f"Tenant {n:02d}", commit=False)
        db.session.commit()
        user = db.session.scalar(select(User).where(User.email == AUDITOR))
        if user is None:
            user = workspaces.create_user(actor=admin, email=AUDITOR, name="Bench Auditor", password=PASSWORD,
                                          commit=False)
            db.session.add(Membership(user_id=user.id, workspace_id=workspace.id, role="auditor"))
            db.session.commit()
        tenant_ids = list(db.session.scalars(select(Tenant.id).where(Tenant.workspace_id == workspace.id)))
        have = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.workspace_id == workspace.id))
        if have < rows:
            log(f"seeding {rows - have:,} audit rows through the chain trigger (once; kept for later runs)")
            started = time.perf_counter()
            for start in range(have + 1, rows + 1, BATCH):
                stop = min(rows, start + BATCH - 1)
                db.session.execute(INSERT_AUDIT, {"workspace_id": workspace.id, "tenant_ids": tenant_ids,
                                                  "actor_id": user.id, "total": rows, "start": start, "stop": stop})
                db.session.commit()
                log(f"  {stop:,} / {rows:,} rows ({stop / (time.perf_counter() - started + 1e-9):,.0f} rows/s)")
            db.session.execute(text("ANALYZE audit_events"))
            db.session.commit()
        total = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.workspace_id == workspace.id))
        db.session.remove()
        db.engine.dispose()
    return AuditFixture(workspace_id=workspace.id, auditor_email=AUDITOR, password=PASSWORD, audit_rows=total)


INCIDENT_WORKSPACE = "bench-incidents"
ANALYST = "analyst@bench.test"
INCIDENT_BATCH = 50_000

INSERT_INCIDENTS = text("""
INSERT INTO incidents (id, workspace_id, tenant_id, number, title, description, severity, priority, status, category,
                       detection_source, trigger_source, affected_service, labels, assigned_team, assignee, reporter,
                       created_by, created_at, updated_at, acknowledged_at, resolved_at, closed_at,
                       acknowledge_due_at, resolve_due_at, acknowledge_breached, resolve_breached, breached_at,
                       is_simulation, sla_paused_seconds, priority_overridden, workaround_available, reopened_count)
SELECT gen_random_uuid(), :workspace_id, (:tenant_ids)[1 + (g % cardinality(:tenant_ids))], 1000 + g,
       (ARRAY['Latency above SLO', 'Error rate spike', 'Timeouts', 'Crash loop', 'Disk almost full',
              'Certificate expiring', 'Login failures', 'Stale data', 'Memory leak', 'Queue backlog',
              'Slow queries', 'Packet loss', 'Failed deploy', 'Drift detected', 'Empty responses',
              'Throttling', 'Replication lag', 'Job failed', 'High CPU', 'DNS resolution errors'])[1 + g % 20]
       || ' on ' ||
       (ARRAY['checkout', 'payments', 'search', 'catalog', 'inventory', 'orders', 'billing', 'invoicing',
              'shipping', 'returns', 'loyalty', 'recommendations', 'fraud', 'identity', 'sso', 'vpn', 'wifi',
              'printing', 'payroll', 'reporting', 'warehouse', 'pricing', 'promotions', 'notifications', 'email',
              'sms', 'mobile', 'web', 'partner', 'ledger', 'treasury', 'kyc', 'onboarding', 'support', 'chat',
              'telephony', 'storage', 'backup', 'cdn', 'gateway'])[1 + (g / 20) % 40] || ' #' || g,
       '', sev.s, CASE sev.s WHEN 'p1' THEN 'high' WHEN 'p2' THEN 'high' WHEN 'p3' THEN 'medium' ELSE 'low' END,
       st.s, (ARRAY['software', 'hardware', 'security', 'performance', 'other'])[1 + g % 5],
       'monitoring_tool', (ARRAY['manual', 'alertmanager', 'pagerduty'])[1 + g % 3],
       (ARRAY['checkout-api', 'vpn-gateway', 'orders-db', 'payroll', 'credit-risk-v3', 'search'])[1 + g % 6],
       ARRAY['region:' || (ARRAY['eu', 'us', 'apac'])[1 + g % 3]],
       (ARRAY['service_desk', 'L1', 'L2', 'L3', 'devops'])[1 + g % 5], 'analyst' || (g % 40), 'reporter',
       'reporter', t.created, t.created + interval '2 hours',
       CASE WHEN st.s <> 'open' THEN t.created + interval '4 minutes' END,
       CASE WHEN st.s IN ('resolved', 'closed') THEN t.created + interval '3 hours' END,
       CASE WHEN st.s = 'closed' THEN t.created + interval '1 day' END,
       t.created + make_interval(mins => CASE sev.s WHEN 'p1' THEN 5 WHEN 'p2' THEN 15 WHEN 'p3' THEN 60 ELSE 240 END),
       t.created + make_interval(mins => CASE sev.s WHEN 'p1' THEN 60 WHEN 'p2' THEN 240 WHEN 'p3' THEN 1440
                                                     ELSE 4320 END),
       false, (g % 13 = 0), CASE WHEN g % 13 = 0 THEN t.created + interval '1 hour' END,
       false, 0, false, false, 0
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
CROSS JOIN LATERAL (SELECT (ARRAY['p1', 'p2', 'p2', 'p3', 'p3', 'p3', 'p4', 'p4'])[1 + (g / 8) % 8] AS s) sev
CROSS JOIN LATERAL (SELECT CASE WHEN (g * 7919) % 1000 < 20 THEN 'open' WHEN (g * 7919) % 1000 < 50 THEN 'investigating'
                                WHEN (g * 7919) % 1000 < 65 THEN 'escalated' WHEN (g * 7919) % 1000 < 75 THEN 'pending_vendor'
                                WHEN (g * 7919) % 1000 < 90 THEN 'mitigated' WHEN (g * 7919) % 1000 < 200 THEN 'resolved'
                                ELSE 'closed' END AS s) st
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (:total - g) * 20) AS created) t
""")

REBUILD_COUNTS = [text(sql) for sql in (
    "DELETE FROM incident_status_counts WHERE workspace_id = :ws",
    """INSERT INTO incident_status_counts
           (workspace_id, tenant_id, severity, status, priority, team, breached, is_simulation, n)
       SELECT workspace_id, tenant_id, severity, status, priority, coalesce(assigned_team, ''),
              acknowledge_breached OR resolve_breached, is_simulation, count(*) FROM incidents
       WHERE workspace_id = :ws GROUP BY 1, 2, 3, 4, 5, 6, 7, 8""",
    """INSERT INTO reference_counters (workspace_id, kind, last_number)
       SELECT :ws, 'incident', coalesce(max(number), 1000) FROM incidents WHERE workspace_id = :ws
       ON CONFLICT (workspace_id, kind) DO UPDATE SET last_number = excluded.last_number""",
)]


@dataclass(frozen=True)
class IncidentFixture:
    workspace_id: int
    analyst_email: str
    password: str
    incidents: int
    tenants: int


def ensure_incident_fixture(*, rows: int, tenants: int, log: Callable[[str], None]) -> IncidentFixture:
    """1,000,000 incidents in 100 tenants by default, most of them history (resolved or closed)."""
    from app import create_app
    from app.actors import Actor
    from app.auth.models import User
    from app.extensions import db
    from app.incidents.models import Incident
    from app.workspaces import service as workspaces
    from app.workspaces.models import Membership, Tenant

    app = create_app()
    with app.app_context():
        system = Actor.system("bench")
        workspace, _ = workspaces.ensure_workspace(slug=INCIDENT_WORKSPACE, name="Benchmark Incidents", actor=system)
        admin = Actor(kind="system", id=None, label="system:bench", workspace_id=workspace.id)
        have_tenants = set(db.session.scalars(select(Tenant.slug).where(Tenant.workspace_id == workspace.id)))
        for n in range(tenants):
            if f"customer-{n:03d}" not in have_tenants:
                workspaces.create_tenant(actor=admin, slug=f"customer-{n:03d}", name=f"Customer {n:03d}", commit=False)
        db.session.commit()
        user = db.session.scalar(select(User).where(User.email == ANALYST))
        if user is None:
            user = workspaces.create_user(actor=admin, email=ANALYST, name="Bench Analyst", password=PASSWORD,
                                          commit=False)
            db.session.add(Membership(user_id=user.id, workspace_id=workspace.id, role="service_desk_analyst"))
            db.session.commit()
        tenant_ids = list(db.session.scalars(select(Tenant.id).where(Tenant.workspace_id == workspace.id)
                                             .order_by(Tenant.id)))
        have = db.session.scalar(select(func.count()).select_from(Incident)
                                 .where(Incident.workspace_id == workspace.id))
        if have < rows:
            log(f"seeding {rows - have:,} incidents in {len(tenant_ids)} tenants (once; kept for later runs)")
            started = time.perf_counter()
            # the per-row counter trigger is replaced by one rebuild at the end
            db.session.execute(text("ALTER TABLE incidents DISABLE TRIGGER incident_status_counts_insert_delete"))
            db.session.commit()
            try:
                for start in range(have + 1, rows + 1, INCIDENT_BATCH):
                    stop = min(rows, start + INCIDENT_BATCH - 1)
                    db.session.execute(INSERT_INCIDENTS, {"workspace_id": workspace.id, "tenant_ids": tenant_ids,
                                                          "total": rows, "start": start, "stop": stop})
                    db.session.commit()
                    log(f"  {stop:,} / {rows:,} ({stop / (time.perf_counter() - started + 1e-9):,.0f} rows/s)")
            finally:
                db.session.rollback()
                db.session.execute(text("ALTER TABLE incidents ENABLE TRIGGER incident_status_counts_insert_delete"))
                db.session.commit()
        total = db.session.scalar(select(func.count()).select_from(Incident)
                                  .where(Incident.workspace_id == workspace.id))
        counted = db.session.scalar(text("SELECT coalesce(sum(n), 0) FROM incident_status_counts WHERE workspace_id = :ws"),
                                    {"ws": workspace.id})
        if counted != total:
            for statement in REBUILD_COUNTS:
                db.session.execute(statement, {"ws": workspace.id})
            db.session.execute(text("ANALYZE incidents"))
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return IncidentFixture(workspace_id=workspace.id, analyst_email=ANALYST, password=PASSWORD, incidents=total,
                           tenants=len(tenant_ids))
