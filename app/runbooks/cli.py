"""`flask --app wsgi findings …` and `flask --app wsgi runbooks …` (spec §11)."""

from __future__ import annotations

import json
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.actors import Actor
from app.cli import domain_errors_exit
from app.extensions import db
from app.workspaces.models import Tenant

findings_cli = AppGroup("findings", help="Findings and monitoring events.")
runbooks_cli = AppGroup("runbooks", help="Operator runbooks: list, preflight, run, deploy hook.")


@findings_cli.command("generate")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--per-tenant", type=int, required=True, help="Findings per tenant (each with 1-5 events).")
@click.option("--broken-ratio", type=float, default=0.1, show_default=True,
              help="Share of findings made inconsistent: 3/4 stale lifecycle fields, 1/4 duplicated.")
@domain_errors_exit
def findings_generate(workspace_slug: str, per_tenant: int, broken_ratio: float) -> None:
    """Realistic findings and events for every tenant of a workspace, some left for the backfill to repair."""
    from app.findings.generator import generate
    from app.workspaces.service import get_workspace_by_slug

    workspace = get_workspace_by_slug(workspace_slug)
    tenants = db.session.scalar(select(func.count()).select_from(Tenant).where(Tenant.workspace_id == workspace.id))
    with click.progressbar(length=max(tenants, 1) * per_tenant, label="generating findings", file=sys.stderr) as bar:
        result = generate(workspace_id=workspace.id, per_tenant=per_tenant, broken_ratio=broken_ratio,
                          progress=lambda added: bar.update(min(added, per_tenant)))
    click.echo(json.dumps({"workspace": workspace.slug, "tenants": result.tenants, "findings": result.findings,
                           "events": result.events, "duplicates": result.duplicates, "stale": result.stale}))


@runbooks_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runbooks_list(as_json: bool) -> None:
    """The runbook catalog."""
    from app.runbooks.catalog import RUNBOOKS

    rows = [{"key": r.key, "label": r.label, "description": r.description, "capability": r.capability,
             "estimated_duration": r.estimated_duration, "scopes": list(r.scopes), "read_only": r.read_only,
             "run_after_deploy": r.run_after_deploy} for r in RUNBOOKS.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        flags = ", ".join(f for f, on in (("read-only", row["read_only"]), ("after deploy", row["run_after_deploy"]))
                          if on)
        click.echo(f"{row['key']:<32} {row['label']} [{' | '.join(row['scopes'])}]" + (f" ({flags})" if flags else ""))
        click.echo(f"{'':<32} {row['description']}")


def _target(key: str, workspace: str | None, tenant: str | None, all_tenants: bool):
    from app.runbooks import service

    if bool(tenant) == all_tenants:
        raise click.UsageError("give --tenant SLUG or --all-tenants")
    runbook = service.get_runbook(key)
    return runbook, service.resolve_target(runbook=runbook, workspace=workspace, tenant=tenant,
                                           all_tenants=all_tenants)


def _scope_options(fn):
    fn = click.option("--workspace", default=None, help="Workspace slug (needed when there is more than one).")(fn)
    fn = click.option("--all-tenants", is_flag=True, help="Every tenant of the workspace.")(fn)
    fn = click.option("--tenant", default=None, help="One tenant, by slug.")(fn)
    return click.argument("key")(fn)


@runbooks_cli.command("preflight")
@_scope_options
@domain_errors_exit
def runbooks_preflight(key: str, tenant: str | None, all_tenants: bool, workspace: str | None) -> None:
    """Count what a run would change, changing nothing (the preflight itself is audited)."""
    from app.runbooks import service

    runbook, target = _target(key, workspace, tenant, all_tenants)
    found = service.preflight(actor=Actor.system("cli"), runbook=runbook, target=target, source="cli")
    click.echo(json.dumps({"runbook": runbook.key, "workspace": target.workspace.slug, "scope": target.scope,
                           "tenant": target.tenant.slug if target.tenant else None, **found.as_context()}))


@runbooks_cli.command("run")
@_scope_options
@click.option("--reason-code", default=None, help="DATA_REPAIR, INCIDENT, SUPPORT or SECURITY.")
@click.option("--reason-text", default=None, help="Why (required with --all-tenants).")
@click.option("--yes", is_flag=True, help="Do not ask to confirm.")
@click.option("--no-wait", is_flag=True, help="Start the run and print it without waiting.")
@domain_errors_exit
def runbooks_run(key: str, tenant: str | None, all_tenants: bool, workspace: str | None, reason_code: str | None,
                 reason_text: str | None, yes: bool, no_wait: bool) -> None:
    """Preflight, start and wait for a run, showing progress; print the final run as JSON.
    Exit code 0 only when the run succeeded."""
    from app.runbooks import service

    actor = Actor.system("cli")
    runbook, target = _target(key, workspace, tenant, all_tenants)
    service.check_reason(actor=actor, target=target, reason_code=reason_code, reason_text=reason_text)
    found = service.preflight(actor=actor, runbook=runbook, target=target, source="cli")
    click.echo(f"{runbook.key} on {target.label}: {found.affected_count:,} of {found.total_count:,} "
               f"{runbook.unit} would change", err=True)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("not confirmed: pass --yes")
        typed = click.prompt(f"Type {runbook.key} to start the run", err=True, default="", show_default=False)
        if typed.strip() != runbook.key:
            click.echo("error: not confirmed; nothing was started", err=True)
            sys.exit(1)
    started = service.start(actor=actor, preflight=found, source="cli", reason_code=reason_code,
                            reason_text=reason_text)
    run = started.run
    if not started.created:
        click.echo(f"run #{run.id} of this runbook and scope is already active; waiting for it", err=True)
    if not no_wait:
        run = _wait(run.id)
    click.echo(json.dumps(service.run_as_json(run), indent=2))
    sys.exit(0 if run.outcome == "succeeded" or (no_wait and run.status != "completed") else 1)


def _wait(run_id: int):
    """Follow the run to its end with a progress bar; with no worker listening, run its jobs here."""
    from app.runbooks import service
    from jobs.worker import run_worker

    inline = service.workers_listening() == 0
    if inline:
        click.echo("no worker is listening on the runbooks queue: running the jobs in this process", err=True)
    with click.progressbar(length=100, label=f"run #{run_id}", file=sys.stderr, show_pos=False,
                           item_show_func=lambda item: item) as bar:
        shown = 0
        while True:
            if inline:
                run_worker(current_app._get_current_object(), burst=True, simple=True, with_scheduler=False,
                           queue_names=["runbooks"])
            db.session.rollback()
            view = service.run_view(run_id)
            counts = view.counts
            bar.update(view.percent - shown, f"{counts['processed']:,}/{counts['total']:,} {view.run.status}")
            shown = view.percent
            if view.run.status == "completed":
                return view.run
            if inline and not service.workers_listening():
                # the queue is empty but the run is not done: a retry is scheduled, or parts are waiting
                from jobs.runbooks import watchdog

                watchdog()
            time.sleep(0.5)


@runbooks_cli.command("deploy-hook")
@click.option("--release", default=None, help="Release id (default: $OPSDESK_RELEASE, else the schema revision).")
@click.option("--wait", "wait", is_flag=True, help="Wait for the runs to finish; exit 1 if any did not succeed.")
@domain_errors_exit
def runbooks_deploy_hook(release: str | None, wait: bool) -> None:
    """Start the runbooks marked to run after a deploy, once per release (running it again starts nothing)."""
    from app.runbooks import service

    release = release or service.deploy_release()
    done = service.deploy_hook(release=release)
    ok = True
    if wait:
        for item in done:
            run = _wait(item["run_id"])
            item["outcome"] = run.outcome
            ok = ok and run.outcome == "succeeded"
    click.echo(json.dumps({"release": release, "runs": done}, indent=2))
    sys.exit(0 if ok else 1)
