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
