"""Shared set-up for runbook tests: a world with findings that need repair, and running runs."""

from __future__ import annotations

from sqlalchemy import text

from app.actors import Actor
from app.extensions import db
from app.findings import generator, lifecycle
from app.runbooks import service
from jobs.worker import run_worker

CLI = Actor.system("cli")


def seed_findings(world, per_tenant: int = 300, broken_ratio: float = 0.3):
    return generator.generate(workspace_id=world.workspace.id, per_tenant=per_tenant, broken_ratio=broken_ratio,
                              tenant_ids=[world.tenant_a.id, world.tenant_b.id])


def preflight(world, key: str = "findings.lifecycle.backfill", *, tenant=None, actor=CLI, source="cli"):
    runbook = service.get_runbook(key)
    target = service.resolve_target(runbook=runbook, workspace=world.workspace.slug,
                                    tenant=tenant.slug if tenant else None, all_tenants=tenant is None)
    return service.preflight(actor=actor, runbook=runbook, target=target, source=source)


def start(world, key: str = "findings.lifecycle.backfill", *, tenant=None, actor=CLI, source="cli"):
    found = preflight(world, key, tenant=tenant, actor=actor, source=source)
    return found, service.start(actor=actor, preflight=found, source=source, reason_code="DATA_REPAIR",
                                reason_text="repairing findings for the test")


def work_all(app) -> None:
    run_worker(app, burst=True, simple=True, with_scheduler=False, queue_names=["runbooks", "notifications"])


def survey(world, tenant=None):
    return lifecycle.survey(workspace_id=world.workspace.id, tenant_id=tenant.id if tenant else None)


def parts(run_id: int) -> list:
    return db.session.execute(text("SELECT * FROM operation_run_parts WHERE run_id = :id ORDER BY id"),
                              {"id": run_id}).mappings().all()


def findings_state(world) -> list:
    """Every finding of the world with its lifecycle fields and event count: the data a run changes."""
    return db.session.execute(text("""
        SELECT f.id, f.fingerprint, f.status, f.first_seen_at, f.last_seen_at, f.times_seen, f.resolved_at,
               f.acknowledged_at, (SELECT count(*) FROM monitoring_events e WHERE e.finding_id = f.id) AS events
        FROM findings f WHERE f.workspace_id = :w ORDER BY f.id
    """), {"w": world.workspace.id}).all()
