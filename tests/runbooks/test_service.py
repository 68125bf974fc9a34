"""Runbooks end to end through real RQ workers on real PostgreSQL and Redis: preflight accuracy,
idempotent start under a race, chunk idempotency, lost workers, cancellation, outcomes, audit
and alerts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from app.actors import Actor
from app.errors import NotAllowed, ValidationFailed
from app.extensions import db
from app.runbooks import execution, service
from app.runbooks.models import OperationRun
from jobs import runbooks as runbook_jobs
from tests.runbooks.helpers import findings_state, parts, preflight, seed_findings, start, survey, work_all


@pytest.fixture()
def small_chunks(app):
    """Chunks of 50 rows, so every part takes several transactions."""
    before = app.config["RUNBOOK_CHUNK_ROWS"]
    app.config["RUNBOOK_CHUNK_ROWS"] = 50
    yield
    app.config["RUNBOOK_CHUNK_ROWS"] = before


def test_preflight_counts_exactly_what_the_run_changes(app, app_ctx, world, small_chunks):
    seed_findings(world)
    before = survey(world)
    assert before.duplicates > 0 and before.stale > 0
    found, started = start(world)
    assert found.affected_count == before.affected and found.total_count == before.total
    assert found.estimated_tenants == 2
    assert started.created and started.run.status == "queued" and started.run.outcome == "pending"
    work_all(app)
    run = service.get_run(started.run.id)
    assert (run.status, run.outcome) == ("completed", "succeeded")
    counts = run.summary_counts
    assert counts == {"total": before.total, "processed": before.total, "updated": before.affected,
                      "skipped": before.total - before.affected, "failed": 0, "tenants": 2}
    after = survey(world)
    assert after.affected == 0 and after.duplicates == 0 and after.total == before.total - before.duplicates
    assert db.session.scalar(text("SELECT count(*) FROM monitoring_events WHERE workspace_id = :w"
                                  " AND finding_id IS NULL"), {"w": world.workspace.id}) == 0


def test_preflight_writes_nothing_but_its_audit_event(app, app_ctx, world):
    seed_findings(world, per_tenant=100)
    data_before = findings_state(world)
    runs_before = db.session.scalar(text("SELECT count(*) FROM operation_runs"))
    found = preflight(world, tenant=world.tenant_a)
    assert findings_state(world) == data_before
    assert db.session.scalar(text("SELECT count(*) FROM operation_runs")) == runs_before
    event = db.session.execute(text("""
        SELECT action, ref_id, tenant_id, context FROM audit_events
        WHERE workspace_id = :w AND action = 'platform.ops.runbooks.preflight' ORDER BY id DESC LIMIT 1
    """), {"w": world.workspace.id}).one()
    assert event.ref_id == "findings.lifecycle.backfill" and event.tenant_id == world.tenant_a.id
    assert event.context["runbook"] == {"key": "findings.lifecycle.backfill", "scope": "single_tenant",
                                        "target_tenant_id": world.tenant_a.id, "source": "cli"}
    assert event.context["preflight"] == {"affected_count": found.affected_count, "total_count": found.total_count,
                                          "estimated_tenants": None}


def test_fifty_racing_starts_make_one_run(app, app_ctx, world):
    found = preflight(world, "incidents.sla.recompute")
    barrier = threading.Barrier(50)
    results, errors = [], []

    def start_one():
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                started = service.start(actor=Actor.system("cli"), preflight=found, source="cli",
                                        reason_code="DATA_REPAIR", reason_text="fifty operators at once")
                results.append((started.run.id, started.created))
            except Exception as error:  # noqa: BLE001 (collected and asserted below)
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=start_one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert len(results) == 50
    assert len({run_id for run_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    run_id = results[0][0]
    assert db.session.scalar(text("SELECT count(*) FROM operation_runs WHERE run_identity_hash = "
                                  "(SELECT run_identity_hash FROM operation_runs WHERE id = :id)"), {"id": run_id}) == 1
    starts = db.session.scalar(text("SELECT count(*) FROM audit_events WHERE action = 'platform.ops.runbooks.start'"
                                    " AND ref_id = :id"), {"id": str(run_id)})
    assert starts == 1


def test_a_finished_run_frees_the_scope_for_the_next_start(app, app_ctx, world):
    _, first = start(world, "incidents.sla.recompute", tenant=world.tenant_a)
    work_all(app)
    assert service.get_run(first.run.id).status == "completed"
    _, second = start(world, "incidents.sla.recompute", tenant=world.tenant_a)
    assert second.created and second.run.id != first.run.id
    _, other_scope = start(world, "incidents.sla.recompute", tenant=world.tenant_b)
    assert other_scope.created and other_scope.run.id != second.run.id


def test_running_a_part_twice_changes_and_counts_nothing_more(app, app_ctx, world, small_chunks):
    seed_findings(world, per_tenant=200)
    _, started = start(world, tenant=world.tenant_a)
    part_ids = execution.fan_out(started.run.id)
    assert len(part_ids) == 1
    first = execution.run_part(part_ids[0])
    assert first.state == "succeeded" and first.run_completed
    counts, data = service.get_run(started.run.id).summary_counts, findings_state(world)
    again = execution.run_part(part_ids[0])
    assert again.state == "finished" and not again.run_completed
    assert service.get_run(started.run.id).summary_counts == counts
    assert findings_state(world) == data
    assert execution.fan_out(started.run.id) == []  # a second fan-out adds nothing either


def test_a_chunk_that_fails_midway_is_rolled_back_and_resumed(app, app_ctx, world, small_chunks, monkeypatch):
    seed_findings(world, per_tenant=300)
    found, started = start(world, tenant=world.tenant_b)
    runbook = service.get_runbook("findings.lifecycle.backfill")
    real_chunk, calls = runbook.work.chunk, {"n": 0}

    def flaky_chunk(*args, **kwargs):
        result = real_chunk(*args, **kwargs)  # the statement ran: its changes are in the transaction
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("network blip talking to the database at 10.0.0.5 password=hunter2")
        return result

    monkeypatch.setattr(type(runbook.work), "chunk", lambda self, *a, **k: flaky_chunk(*a, **k))
    (part_id,) = execution.fan_out(started.run.id)
    with pytest.raises(ConnectionError):
        execution.run_part(part_id, final_attempt=False)
    part = parts(started.run.id)[0]
    assert part["status"] == "queued" and part["attempts"] == 1
    assert "hunter2" not in str(part["failure"]) and part["failure"]["reason_code"] == "runbook.error"
    halfway = service.get_run(started.run.id).summary_counts
    assert halfway["processed"] == part["processed"] > 0  # two committed chunks, the third rolled back
    outcome = execution.run_part(part_id)
    assert outcome.state == "succeeded" and outcome.run_completed
    run = service.get_run(started.run.id)
    assert run.outcome == "succeeded"
    assert run.summary_counts["processed"] == run.summary_counts["total"] == found.total_count
    assert run.summary_counts["updated"] == found.affected_count
    assert survey(world, world.tenant_b).affected == 0


def test_a_part_failing_on_its_last_attempt_fails_the_run_and_alerts(app, app_ctx, world, monkeypatch):
    seed_findings(world, per_tenant=50)
    _, started = start(world)
    runbook = service.get_runbook("findings.lifecycle.backfill")
    real_chunk = runbook.work.chunk

    def chunk(self, workspace_id, tenant_id, cursor):
        if tenant_id == world.tenant_b.id:
            raise RuntimeError("Traceback (most recent call last):\n  File \"/srv/app/x.py\", line 3\n"
                               "RuntimeError: token=abc.def.ghi for ops@example.test")
        return real_chunk(workspace_id, tenant_id, cursor)

    monkeypatch.setattr(type(runbook.work), "chunk", chunk)
    for part_id in execution.fan_out(started.run.id):
        execution.run_part(part_id, final_attempt=True)
    run = service.get_run(started.run.id)
    assert (run.status, run.outcome) == ("completed", "partially_succeeded")
    assert run.summary_counts["failed"] == 1 and run.summary_counts["tenants"] == 2
    (failure,) = run.failure_summary
    assert failure["reason_code"] == "runbook.error" and failure["tenant_id"] == world.tenant_b.id
    assert "abc.def" not in failure["message"] and "example.test" not in failure["message"]
    assert "/srv/app" not in failure["message"] and "Traceback" not in failure["message"]
    audit = db.session.execute(text("SELECT context FROM audit_events WHERE action = 'platform.ops.runbooks.failed'"
                                    " AND ref_id = :id"), {"id": str(run.id)}).scalar_one()
    assert audit["outcome"] == "partially_succeeded" and audit["runbook"]["key"] == "findings.lifecycle.backfill"
    delivery = db.session.execute(text("SELECT event_type, payload FROM alert_deliveries WHERE workspace_id = :w"
                                       " ORDER BY id DESC LIMIT 1"), {"w": world.workspace.id}).one()
    assert delivery.event_type == "operations.run.failed"
    assert delivery.payload["metadata"]["operation_run_id"] == run.id


def test_cancelling_stops_between_chunks(app, app_ctx, world, small_chunks):
    seed_findings(world, per_tenant=400)
    _, started = start(world)
    part_ids = execution.fan_out(started.run.id)
    seen = []

    def cancel_after_first_chunk(part):
        if not seen:
            seen.append(part.processed)
            service.request_cancel(actor=Actor.system("cli"), run_id=started.run.id)

    first = execution.run_part(part_ids[0], after_chunk=cancel_after_first_chunk)
    assert first.state == "cancelled"
    second = execution.run_part(part_ids[1])
    assert second.state == "cancelled" and second.run_completed
    run = service.get_run(started.run.id)
    assert (run.status, run.outcome) == ("completed", "cancelled")
    assert 0 < run.summary_counts["processed"] < run.summary_counts["total"]


def test_cancelling_a_run_no_worker_picked_up_ends_it_at_once(app, app_ctx, world):
    _, started = start(world, "incidents.sla.recompute")
    run = service.request_cancel(actor=Actor.system("cli"), run_id=started.run.id)
    assert (run.status, run.outcome) == ("completed", "cancelled")
    with pytest.raises(ValidationFailed):
        service.request_cancel(actor=Actor.system("cli"), run_id=started.run.id)


def test_a_lost_part_is_resumed_by_the_watchdog_and_counted_once(app, app_ctx, world, small_chunks):
    seed_findings(world, per_tenant=300)
    found, started = start(world, tenant=world.tenant_a)
    (part_id,) = execution.fan_out(started.run.id)

    class WorkerDied(BaseException):
        """Stands in for SIGKILL: nothing after it runs, not even the error handling."""

    def die_after_two_chunks(part):
        if part.processed >= 100:
            raise WorkerDied

    with pytest.raises(WorkerDied):
        execution.run_part(part_id, after_chunk=die_after_two_chunks)
    db.session.rollback()
    assert parts(started.run.id)[0]["status"] == "running"
    db.session.execute(text("UPDATE operation_run_parts SET heartbeat_at = now() - interval '1 hour' WHERE id = :id"),
                       {"id": part_id})
    db.session.commit()
    report = runbook_jobs.watchdog()
    assert report["requeued"] >= 1
    work_all(app)
    run = service.get_run(started.run.id)
    assert run.outcome == "succeeded"
    assert run.summary_counts["processed"] == run.summary_counts["total"] == found.total_count
    assert run.summary_counts["updated"] == found.affected_count
    assert parts(run.id)[0]["attempts"] == 2


def test_a_part_out_of_attempts_fails_with_worker_lost(app, app_ctx, world):
    _, started = start(world, "incidents.sla.recompute", tenant=world.tenant_a)
    (part_id,) = execution.fan_out(started.run.id)
    db.session.execute(text("UPDATE operation_run_parts SET status = 'running', attempts = :max,"
                            " heartbeat_at = now() - interval '1 hour' WHERE id = :id"),
                       {"id": part_id, "max": app.config["RUNBOOK_MAX_ATTEMPTS"]})
    db.session.commit()
    runbook_jobs.watchdog()
    run = service.get_run(started.run.id)
    assert (run.status, run.outcome) == ("completed", "failed")
    assert [f["reason_code"] for f in run.failure_summary] == ["worker.lost"]


def test_the_watchdog_leaves_a_part_alone_while_its_worker_holds_the_lock(app, app_ctx, world):
    _, started = start(world, "incidents.sla.recompute", tenant=world.tenant_b)
    (part_id,) = execution.fan_out(started.run.id)
    db.session.execute(text("UPDATE operation_run_parts SET status = 'running', heartbeat_at = now() - interval "
                            "'1 hour' WHERE id = :id"), {"id": part_id})
    db.session.commit()
    key = execution.tenant_lock_key("incidents.sla.recompute", world.workspace.id, world.tenant_b.id)
    with db.engine.connect() as holder:
        assert holder.scalar(text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": execution.TENANT_LOCK, "key": key})
        assert execution.recover_lost_part(part_id, max_attempts=3) == "alive"
        assert execution.run_part(part_id).state == "busy"
        holder.execute(text("SELECT pg_advisory_unlock_all()"))
    assert parts(started.run.id)[0]["status"] == "running"
    assert execution.recover_lost_part(part_id, max_attempts=3) == "requeued"


def test_the_watchdog_queues_a_fan_out_that_redis_lost(app, app_ctx, world):
    _, started = start(world, "incidents.sla.recompute", tenant=world.tenant_a)
    from rq.job import Job

    from app.extensions import get_redis

    Job.fetch(runbook_jobs.fan_out_job_id(started.run.id), connection=get_redis()).delete()
    db.session.execute(text("UPDATE operation_runs SET created_at = now() - interval '5 minutes' WHERE id = :id"),
                       {"id": started.run.id})
    db.session.commit()
    assert runbook_jobs.watchdog()["fan_outs"] >= 1
    work_all(app)
    assert service.get_run(started.run.id).outcome == "succeeded"


def test_audit_chain_verify_reports_a_tampered_event(app, app_ctx, world):
    _, clean = start(world, "audit.chain.verify")
    work_all(app)
    run = service.get_run(clean.run.id)
    assert run.outcome == "succeeded" and run.summary_counts["processed"] >= run.summary_counts["total"] > 0
    assert run.summary_counts["updated"] == 0
    victim = db.session.scalar(text("SELECT id FROM audit_events WHERE workspace_id = :w ORDER BY chain_seq"
                                    " LIMIT 1 OFFSET 1"), {"w": world.workspace.id})
    db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    db.session.execute(text("UPDATE audit_events SET actor_label = 'mallory' WHERE id = :id"), {"id": victim})
    db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    db.session.commit()
    _, tampered = start(world, "audit.chain.verify")
    work_all(app)
    run = service.get_run(tampered.run.id)
    assert run.outcome == "failed"
    assert run.failure_summary[0]["reason_code"] == "audit.chain_broken"
    assert f"event {victim} " in run.failure_summary[0]["message"]


def test_sla_recompute_preflight_matches_the_run(app, app_ctx, world):
    from app.incidents import service as incidents

    for n in range(6):
        incidents.create_incident(actor=world.actor("service_desk_analyst"), data={
            "title": f"Checkout errors {n}", "severity": "p2" if n % 2 else "p3", "tenant": world.tenant_a.slug})
    db.session.execute(text("UPDATE incidents SET resolve_due_at = resolve_due_at + interval '1 day'"
                            " WHERE workspace_id = :w AND severity = 'p2'"), {"w": world.workspace.id})
    db.session.commit()
    found, started = start(world, "incidents.sla.recompute")
    assert (found.affected_count, found.total_count) == (3, 6)
    work_all(app)
    run = service.get_run(started.run.id)
    assert run.outcome == "succeeded" and run.summary_counts["updated"] == 3
    assert preflight(world, "incidents.sla.recompute").affected_count == 0


def test_scope_reason_and_confirmation_rules(app, app_ctx, world):
    operator = Actor(kind="platform_user", id=1, label="op@example.test", role="platform_operator")
    found = preflight(world, actor=operator, source="system_ui")
    with pytest.raises(ValidationFailed) as refused:
        service.start(actor=operator, preflight=found, source="system_ui", confirmation="findings.lifecycle.backfill")
    assert set(refused.value.fields) == {"reason_code", "reason_text"}
    with pytest.raises(ValidationFailed) as refused:
        service.start(actor=operator, preflight=found, source="system_ui", reason_code="DATA_REPAIR",
                      reason_text="a good reason here", confirmation="findings")
    assert set(refused.value.fields) == {"confirmation"}
    with pytest.raises(ValidationFailed) as refused:
        service.start(actor=operator, preflight=found, source="system_ui", reason_code="BECAUSE",
                      reason_text="no", confirmation="findings.lifecycle.backfill")
    assert set(refused.value.fields) == {"reason_code", "reason_text"}
    assert db.session.scalar(select(OperationRun).where(OperationRun.workspace_id == world.workspace.id)) is None
    one_tenant = preflight(world, tenant=world.tenant_a, actor=operator, source="system_ui")
    started = service.start(actor=operator, preflight=one_tenant, source="system_ui",
                            confirmation="findings.lifecycle.backfill")
    assert started.created and "reason" not in started.run.context
    assert started.run.context["platform_initiator"] == {"platform_user_id": 1, "email": "op@example.test",
                                                         "name": "op@example.test", "is_break_glass": False}
    elevated = Actor(kind="platform_user", id=1, label="op@example.test", role="platform_operator",
                     is_break_glass=True)
    with pytest.raises(ValidationFailed):
        service.start(actor=elevated, preflight=preflight(world, tenant=world.tenant_b, actor=elevated),
                      source="system_ui", confirmation="findings.lifecycle.backfill")
    with pytest.raises(ValidationFailed) as refused:
        service.resolve_target(runbook=service.get_runbook("audit.chain.verify"), workspace=world.workspace.slug,
                               tenant=world.tenant_a.slug, all_tenants=False)
    assert "scope" in refused.value.fields
    with pytest.raises(NotAllowed):
        preflight(world, actor=world.actor("workspace_admin"))


def test_a_preflight_token_is_bound_to_its_target(app, app_ctx, world):
    found = preflight(world, tenant=world.tenant_a)
    runbook = service.get_runbook("findings.lifecycle.backfill")
    other = service.resolve_target(runbook=runbook, workspace=world.workspace.slug, tenant=world.tenant_b.slug,
                                   all_tenants=False)
    with pytest.raises(ValidationFailed):
        service.preflight_from_token(runbook=runbook, target=other, token=found.token)
    with pytest.raises(ValidationFailed):
        service.preflight_from_token(runbook=runbook, target=found.target, token=found.token + "x")
    again = service.preflight_from_token(runbook=runbook, target=found.target, token=found.token)
    assert again.affected_count == found.affected_count


def test_deploy_hook_runs_once_per_release(app, app_ctx, world):
    first = service.deploy_hook(release="test-release-1")
    mine = [item for item in first if item["workspace"] == world.workspace.slug]
    assert {item["runbook"] for item in mine} == {"findings.lifecycle.backfill", "incidents.sla.recompute"}
    assert {item["action"] for item in mine} == {"started"}
    second = [item for item in service.deploy_hook(release="test-release-1")
              if item["workspace"] == world.workspace.slug]
    assert {item["action"] for item in second} == {"already_running"}
    assert {item["run_id"] for item in second} == {item["run_id"] for item in mine}
    run = service.get_run(mine[0]["run_id"])
    assert run.context["runbook"]["source"] == "deploy_hook" and run.context["runbook"]["release"] == "test-release-1"
    work_all(app)
    third = [item for item in service.deploy_hook(release="test-release-1")
             if item["workspace"] == world.workspace.slug]
    assert {item["action"] for item in third} == {"already_done"}
