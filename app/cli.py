"""Flask CLI commands (`flask --app wsgi …`), named exactly as the spec's §11 lists them."""

from __future__ import annotations

import functools
import json
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.actors import Actor
from app.errors import DomainError
from jobs.queues import QUEUES


def domain_errors_exit(fn):
    """Print a refused command's reason on one line and exit 1; nothing was written."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DomainError as error:
            from app.extensions import db

            db.session.rollback()
            detail = "; ".join(f"{k}: {v}" for k, v in error.fields.items())
            click.echo(f"error: {error.message}" + (f" ({detail})" if detail else ""), err=True)
            sys.exit(1)

    return wrapper


demo_cli = AppGroup("demo", help="Demo data.")
users_cli = AppGroup("users", help="Console and platform users.")
tokens_cli = AppGroup("tokens", help="API tokens for service accounts.")
audit_cli = AppGroup("audit", help="The audit trail.")


@demo_cli.command("load")
@click.option("--password", default="demo-password", show_default=True, help="Password of every demo user.")
@domain_errors_exit
def demo_load(password: str) -> None:
    """Load the demo workspace (idempotent: running it again changes nothing)."""
    from app.demo import load_demo

    summary = load_demo(password=password)
    click.echo(json.dumps(summary, indent=2))


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default=None, help="Display name (defaults to the e-mail's local part).")
@click.option("--workspace", "workspace_slug", default=None, help="Workspace slug (console users).")
@click.option("--role", default=None, help="Workspace role (console users).")
@click.option("--tenant", "tenant_slugs", multiple=True, help="Limit the member to this tenant (repeatable).")
@click.option("--platform-role", default=None, help="platform_operator or platform_admin (platform users).")
@domain_errors_exit
def users_create(email, password, name, workspace_slug, role, tenant_slugs, platform_role) -> None:
    """Create a console user in a workspace, or a platform user for /system."""
    from app.auth.service import create_platform_user
    from app.workspaces.service import create_member_account

    if platform_role and (workspace_slug or role or tenant_slugs):
        raise click.UsageError("--platform-role cannot be combined with --workspace, --role or --tenant")
    if not platform_role and not (workspace_slug and role):
        raise click.UsageError("give --workspace and --role for a console user, or --platform-role")
    actor = Actor.system("cli")
    name = name or email.split("@", 1)[0]
    if platform_role:
        person = create_platform_user(actor=actor, email=email, password=password, name=name, role=platform_role)
        click.echo(json.dumps({"id": person.id, "email": person.email, "platform_role": person.role}))
        return
    membership = create_member_account(actor=actor, email=email, password=password, name=name,
                                       workspace_slug=workspace_slug, role=role, tenant_slugs=list(tenant_slugs))
    click.echo(json.dumps({"id": membership.user.id, "email": membership.user.email, "slug": membership.user.slug,
                           "workspace": workspace_slug, "role": membership.role,
                           "tenants": list(tenant_slugs) or "all"}))


@tokens_cli.command("issue")
@click.option("--service-account", "name", required=True, help="Service account name (created if new).")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--role", required=True)
@click.option("--ttl", "ttl_seconds", type=click.IntRange(min=60), default=None,
              help="Lifetime in seconds (default from OPSDESK_SERVICE_TOKEN_TTL_SECONDS).")
@domain_errors_exit
def tokens_issue(name, workspace_slug, role, ttl_seconds) -> None:
    """Issue an API token for a service account; prints JSON with the token."""
    from app.api.service import issue_service_token

    issued = issue_service_token(name=name, workspace_slug=workspace_slug, role=role, ttl_seconds=ttl_seconds)
    click.echo(json.dumps(dict(issued.as_json(), sub=issued.sub)))


@audit_cli.command("verify")
@click.option("--workspace", "workspace_slug", default=None, help="Only this workspace's chain.")
@domain_errors_exit
def audit_verify(workspace_slug) -> None:
    """Recompute the audit hash chains; exit 1 and name the first broken event of each broken chain."""
    from app.audit.service import verify_chain
    from app.workspaces.service import get_workspace_by_slug

    workspace_id = get_workspace_by_slug(workspace_slug).id if workspace_slug else None
    report = verify_chain(workspace_id=workspace_id)
    if report.intact:
        click.echo(f"audit chain intact: {report.events_checked} events in {report.chains_checked} chain(s)")
        return
    for brk in report.breaks:
        chain = f"workspace {brk.workspace_id}" if brk.workspace_id is not None else "the platform chain"
        click.echo(f"audit chain BROKEN in {chain} at event id {brk.event_id} (seq {brk.chain_seq}): {brk.reason}",
                   err=True)
    sys.exit(1)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option("--no-scheduler", is_flag=True, help="Do not run RQ's scheduler in this worker.")
@click.option("--fork/--no-fork", default=False, show_default=True,
              help="Run each job in a forked work horse (isolation) instead of in the worker process "
                   "(warm connections; the default).")
@click.option("--queue", "queues", multiple=True, type=click.Choice(list(QUEUES)),
              help="Listen to this queue only (repeatable); default: every queue, most urgent first.")
def worker_command(burst: bool, no_scheduler: bool, fork: bool, queues: tuple[str, ...]) -> None:
    """An RQ worker on every Opsdesk queue, with the scheduler (the Procfile's worker line)."""
    from jobs.worker import run_worker

    run_worker(current_app._get_current_object(), burst=burst, with_scheduler=not no_scheduler, simple=not fork,
               queue_names=list(queues) or None)


def register_cli(app: Flask) -> None:
    from app.runbooks.cli import findings_cli, runbooks_cli

    for command in (demo_cli, users_cli, tokens_cli, audit_cli, worker_command, findings_cli, runbooks_cli):
        app.cli.add_command(command)

