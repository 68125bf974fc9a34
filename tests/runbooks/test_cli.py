"""The runbook and findings commands of spec §11, through Flask's CLI runner."""

from __future__ import annotations

import json

from sqlalchemy import text

from app.extensions import db
from tests.runbooks.helpers import seed_findings, survey


def test_findings_generate_prints_what_it_made(runner, world):
    result = runner.invoke(args=["findings", "generate", "--workspace", world.workspace.slug, "--per-tenant", "120",
                                 "--broken-ratio", "0.4"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout.strip().splitlines()[-1])
    assert made["tenants"] == 2 and made["findings"] >= 240 and made["events"] >= made["findings"]
    assert made["duplicates"] > 0 and made["stale"] > 0
    found = survey(world)
    assert found.total == made["findings"] and found.duplicates == made["duplicates"]


def test_findings_generate_refuses_bad_input(runner, world):
    result = runner.invoke(args=["findings", "generate", "--workspace", world.workspace.slug, "--per-tenant", "0"])
    assert result.exit_code == 1 and "per_tenant" in result.output
    result = runner.invoke(args=["findings", "generate", "--workspace", "no-such-place", "--per-tenant", "5"])
    assert result.exit_code == 1 and "No workspace" in result.output
    assert db.session.scalar(text("SELECT count(*) FROM findings WHERE workspace_id = :w"),
                             {"w": world.workspace.id}) == 0


def test_runbooks_list(runner, app_ctx):
    listed = json.loads(runner.invoke(args=["runbooks", "list", "--json"]).stdout)
    assert {r["key"] for r in listed} >= {"findings.lifecycle.backfill", "incidents.sla.recompute", "audit.chain.verify"}
    assert "findings.lifecycle.backfill" in runner.invoke(args=["runbooks", "list"]).stdout


def test_preflight_prints_the_counts(runner, world):
    seed_findings(world, per_tenant=80)
    expected = survey(world)
    result = runner.invoke(args=["runbooks", "preflight", "findings.lifecycle.backfill", "--all-tenants",
                                 "--workspace", world.workspace.slug])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert (printed["affected_count"], printed["total_count"], printed["estimated_tenants"]) == (
        expected.affected, expected.total, 2)
    one = json.loads(runner.invoke(args=["runbooks", "preflight", "findings.lifecycle.backfill", "--tenant",
                                         world.tenant_a.slug, "--workspace", world.workspace.slug]).stdout)
    assert one["estimated_tenants"] is None and one["total_count"] == survey(world, world.tenant_a).total
    assert runner.invoke(args=["runbooks", "preflight", "findings.lifecycle.backfill",
                               "--workspace", world.workspace.slug]).exit_code == 2  # neither scope given
    unknown = runner.invoke(args=["runbooks", "preflight", "no.such.runbook", "--all-tenants",
                                  "--workspace", world.workspace.slug])
    assert unknown.exit_code == 1 and "No runbook" in unknown.output


def test_run_waits_prints_the_run_and_exits_zero_on_success(runner, world):
    seed_findings(world, per_tenant=150)
    expected = survey(world)
    result = runner.invoke(args=["runbooks", "run", "findings.lifecycle.backfill", "--all-tenants",
                                 "--workspace", world.workspace.slug, "--reason-code", "DATA_REPAIR",
                                 "--reason-text", "repair after the intake bug", "--yes"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["status"], run["outcome"]) == ("completed", "succeeded")
    assert run["summary_counts"]["updated"] == expected.affected
    assert run["summary_counts"]["processed"] == run["summary_counts"]["total"] == expected.total
    assert run["context"]["runbook"]["source"] == "cli"
    assert run["context"]["reason"] == {"reason_code": "DATA_REPAIR", "reason_text": "repair after the intake bug"}
    assert survey(world).affected == 0


def test_run_refuses_without_reason_or_confirmation(runner, world):
    no_reason = runner.invoke(args=["runbooks", "run", "incidents.sla.recompute", "--all-tenants",
                                    "--workspace", world.workspace.slug, "--yes"])
    assert no_reason.exit_code == 1 and "reason" in no_reason.output
    not_confirmed = runner.invoke(args=["runbooks", "run", "incidents.sla.recompute", "--tenant",
                                        world.tenant_a.slug, "--workspace", world.workspace.slug], input="nope\n")
    assert not_confirmed.exit_code != 0
    assert db.session.scalar(text("SELECT count(*) FROM operation_runs WHERE workspace_id = :w"),
                             {"w": world.workspace.id}) == 0


def test_run_exits_nonzero_when_the_run_fails(runner, world):
    runner.invoke(args=["runbooks", "preflight", "audit.chain.verify", "--all-tenants", "--workspace",
                        world.workspace.slug])  # its audit event is the one tampered with
    db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    db.session.execute(text("UPDATE audit_events SET actor_label = 'mallory' WHERE id = (SELECT min(id) FROM"
                            " audit_events WHERE workspace_id = :w)"), {"w": world.workspace.id})
    db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    db.session.commit()
    result = runner.invoke(args=["runbooks", "run", "audit.chain.verify", "--all-tenants", "--workspace",
                                 world.workspace.slug, "--reason-code", "SECURITY", "--reason-text",
                                 "quarterly integrity check", "--yes"])
    run = json.loads(result.stdout)
    assert result.exit_code == 1
    assert run["outcome"] == "failed" and run["failure_summary"][0]["reason_code"] == "audit.chain_broken"


def test_deploy_hook_is_idempotent_per_release(runner, world):
    first = runner.invoke(args=["runbooks", "deploy-hook", "--release", "cli-release-7", "--wait"])
    assert first.exit_code == 0, first.output
    runs = [r for r in json.loads(first.stdout)["runs"] if r["workspace"] == world.workspace.slug]
    assert {r["action"] for r in runs} == {"started"} and {r["outcome"] for r in runs} == {"succeeded"}
    second = runner.invoke(args=["runbooks", "deploy-hook", "--release", "cli-release-7"])
    again = [r for r in json.loads(second.stdout)["runs"] if r["workspace"] == world.workspace.slug]
    assert {r["action"] for r in again} == {"already_done"}


def test_a_tenant_slug_names_its_workspace(runner, world, other_world):
    result = runner.invoke(args=["runbooks", "preflight", "incidents.sla.recompute", "--tenant", world.tenant_b.slug])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["workspace"] == world.workspace.slug
    ambiguous = runner.invoke(args=["runbooks", "preflight", "incidents.sla.recompute", "--all-tenants"])
    assert ambiguous.exit_code == 1 and "choose a workspace" in ambiguous.output
