"""Runbooks for operators: preflight, start (idempotent), cancel, and reading runs.

Owned transitions: a run is created `queued`/`pending` here; execution.py moves it to `running` and
`completed` with its outcome. Nothing here knows about Flask requests; the caller is an `Actor`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from app.actors import Actor
from app.audit import service as audit
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.extensions import db
from app.runbooks import summary
from app.runbooks.catalog import ALL_TENANTS, RUNBOOKS, SINGLE_TENANT, Runbook
from app.runbooks.models import ACTIVE_RUN_SQL, OperationRun, OperationRunPart
from app.transactions import after_commit
from app.workspaces.models import Tenant, Workspace

SOURCES = ("system_ui", "cli", "deploy_hook")
REASON_CODES = {"DATA_REPAIR": "Data repair", "INCIDENT": "Incident", "SUPPORT": "Support request",
                "SECURITY": "Security"}
REASON_TEXT_MIN, REASON_TEXT_MAX = 3, 500
PREFLIGHT_MAX_AGE = 15 * 60  # seconds a confirm screen stays valid


@dataclass(frozen=True)
class Target:
    workspace: Workspace
    tenant: Tenant | None

    @property
    def scope(self) -> str:
        return ALL_TENANTS if self.tenant is None else SINGLE_TENANT

    @property
    def tenant_id(self) -> int | None:
        return self.tenant.id if self.tenant else None

    @property
    def label(self) -> str:
        return f"{self.workspace.name} — " + (self.tenant.name if self.tenant else "all tenants")


@dataclass(frozen=True)
class Preflight:
    runbook: Runbook
    target: Target
    affected_count: int
    total_count: int
    estimated_tenants: int | None
    token: str  # signed: lets the confirm step prove what the operator saw, and when

    def as_context(self) -> dict:
        return {"affected_count": self.affected_count, "total_count": self.total_count,
                "estimated_tenants": self.estimated_tenants}


@dataclass(frozen=True)
class Started:
    run: OperationRun
    created: bool  # False: an active run of this runbook and scope already existed and is returned


def get_runbook(key: str) -> Runbook:
    runbook = RUNBOOKS.get(key)
    if runbook is None:
        raise NotFound(f"No runbook {key!r}.")
    return runbook


def runbooks_for(actor: Actor) -> list[Runbook]:
    return [runbook for runbook in RUNBOOKS.values() if actor.can(runbook.capability)]


def resolve_target(*, runbook: Runbook, workspace: str | int | None, tenant: str | int | None,
                   all_tenants: bool) -> Target:
    """The workspace and tenant an operator named (slugs or ids), checked against the runbook's scopes."""
    problems: dict[str, str] = {}
    if workspace in (None, "") and not all_tenants and tenant not in (None, ""):
        # a tenant slug found in exactly one workspace names that workspace
        query = select(Tenant.workspace_id)
        query = query.where(Tenant.id == int(tenant)) if str(tenant).isdigit() else query.where(Tenant.slug == tenant)
        owners = db.session.scalars(query.limit(2)).all()
        workspace = owners[0] if len(owners) == 1 else None
    found_workspace = _workspace(workspace, problems)
    found_tenant = None
    if all_tenants and tenant not in (None, ""):
        problems["scope"] = "choose one tenant or all tenants, not both"
    elif not all_tenants and tenant in (None, ""):
        problems["tenant"] = "choose a tenant, or all tenants"
    elif not all_tenants and found_workspace is not None:
        query = select(Tenant).where(Tenant.workspace_id == found_workspace.id)
        query = query.where(Tenant.id == int(tenant)) if str(tenant).isdigit() else query.where(Tenant.slug == tenant)
        found_tenant = db.session.scalar(query)
        if found_tenant is None:
            problems["tenant"] = f"no tenant {tenant!r} in this workspace"
    scope = ALL_TENANTS if all_tenants else SINGLE_TENANT
    if scope not in runbook.scopes and "scope" not in problems:
        problems["scope"] = f"{runbook.key} runs on {' or '.join(s.replace('_', ' ') for s in runbook.scopes)} only"
    if problems:
        raise ValidationFailed("Choose what the runbook runs on.", fields=problems)
    return Target(workspace=found_workspace, tenant=found_tenant)


def _workspace(workspace: str | int | None, problems: dict[str, str]) -> Workspace | None:
    if workspace in (None, ""):
        workspaces = db.session.scalars(select(Workspace).limit(2)).all()
        if len(workspaces) == 1:  # the usual single-workspace installation needs no choice
            return workspaces[0]
        slugs = db.session.scalars(select(Workspace.slug).order_by(Workspace.slug).limit(11)).all()
        problems["workspace"] = "choose a workspace" + (f" ({', '.join(slugs[:10])}{', …' if len(slugs) > 10 else ''})"
                                                        if slugs else "")
        return None
    query = select(Workspace)
    query = query.where(Workspace.id == int(workspace)) if str(workspace).isdigit() else \
        query.where(Workspace.slug == workspace)
    found = db.session.scalar(query)
    if found is None:
        problems["workspace"] = f"no workspace {workspace!r}"
    return found


def _require(actor: Actor, runbook: Runbook) -> None:
    if not actor.can(runbook.capability):
        raise NotAllowed(f"Running {runbook.key} needs the {runbook.capability} capability.")


def _runbook_context(runbook: Runbook, target: Target, source: str) -> dict:
    return {"key": runbook.key, "scope": target.scope, "target_tenant_id": target.tenant_id, "source": source}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="opsdesk-runbook-preflight")


def preflight(*, actor: Actor, runbook: Runbook, target: Target, source: str) -> Preflight:
    """Count what a run would do, without writing anything but the preflight's audit event."""
    _require(actor, runbook)
    counts = runbook.work.preflight(target.workspace.id, target.tenant_id)
    estimated_tenants = (len(runbook.work.parts(target.workspace.id, None)) if target.tenant is None
                         and not runbook.read_only else None)
    token = _serializer().dumps({"key": runbook.key, "workspace_id": target.workspace.id,
                                 "tenant_id": target.tenant_id, "affected_count": counts.affected,
                                 "total_count": counts.total, "estimated_tenants": estimated_tenants})
    result = Preflight(runbook=runbook, target=target, affected_count=counts.affected, total_count=counts.total,
                       estimated_tenants=estimated_tenants, token=token)
    audit.record(actor=actor, action="platform.ops.runbooks.preflight", ref_type="runbook", ref_id=runbook.key,
                 workspace_id=target.workspace.id, tenant_id=target.tenant_id,
                 context={"runbook": _runbook_context(runbook, target, source), "preflight": result.as_context(),
                          **_initiator_context(actor)})
    db.session.commit()
    return result


def preflight_from_token(*, runbook: Runbook, target: Target, token: str) -> Preflight:
    """The preflight an operator confirmed, if the token is genuine, recent and for this target."""
    try:
        data = _serializer().loads(token or "", max_age=PREFLIGHT_MAX_AGE)
    except SignatureExpired:
        raise ValidationFailed("The preflight is more than 15 minutes old; run it again.",
                               fields={"preflight": "expired"}) from None
    except BadSignature:
        raise ValidationFailed("Run the preflight first.", fields={"preflight": "missing"}) from None
    if (data.get("key"), data.get("workspace_id"), data.get("tenant_id")) != (
            runbook.key, target.workspace.id, target.tenant_id):
        raise ValidationFailed("The preflight was for another runbook or scope; run it again.",
                               fields={"preflight": "does not match"})
    return Preflight(runbook=runbook, target=target, affected_count=data["affected_count"],
                     total_count=data["total_count"], estimated_tenants=data["estimated_tenants"], token=token)


def _initiator_context(actor: Actor) -> dict:
    if actor.kind != "platform_user":
        return {}
    return {"platform_initiator": {"platform_user_id": actor.id, "email": actor.label,
                                   "name": actor.name or actor.label, "is_break_glass": actor.is_break_glass}}


def identity_hash(runbook_key: str, workspace_id: int, tenant_id: int | None) -> str:
    """Same runbook, same scope → same hash: the unique index on active runs keys on it."""
    scope = "all" if tenant_id is None else f"tenant:{tenant_id}"
    return hashlib.sha256(f"{runbook_key}|workspace:{workspace_id}|{scope}".encode()).hexdigest()


def check_reason(*, actor: Actor, target: Target, reason_code: str | None, reason_text: str | None
                 ) -> dict | None:
    """The reason as stored; required for all tenants and under break-glass, checked when given."""
    code, words = (reason_code or "").strip().upper(), " ".join((reason_text or "").split())
    required = target.scope == ALL_TENANTS or actor.is_break_glass
    if not code and not words and not required:
        return None
    problems = {}
    if code not in REASON_CODES:
        problems["reason_code"] = "required: " + ", ".join(REASON_CODES) if not code else \
            f"must be one of {', '.join(REASON_CODES)}"
    if not REASON_TEXT_MIN <= len(words) <= REASON_TEXT_MAX:
        problems["reason_text"] = (f"required ({REASON_TEXT_MIN}-{REASON_TEXT_MAX} characters)" if not words else
                                   f"must be {REASON_TEXT_MIN}-{REASON_TEXT_MAX} characters")
    if problems:
        why = "for a run on all tenants" if target.scope == ALL_TENANTS else "under break-glass elevation"
        raise ValidationFailed(f"A reason is required {why}." if required else "Check the reason.", fields=problems)
    return {"reason_code": code, "reason_text": words}


def start(*, actor: Actor, preflight: Preflight, source: str, reason_code: str | None = None,
          reason_text: str | None = None, confirmation: str | None = None, release: str | None = None) -> Started:
    """Create the run and queue it, or return the active run of the same runbook and scope.

    50 racing starts make one run: the insert skips on the unique index over active runs'
    identity hashes, and the losers read the winner's run.
    """
    runbook, target = preflight.runbook, preflight.target
    _require(actor, runbook)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    problems = {}
    if source == "system_ui" and (confirmation or "").strip() != runbook.key:
        problems["confirmation"] = f"type {runbook.key} to confirm"
    try:
        reason = check_reason(actor=actor, target=target, reason_code=reason_code, reason_text=reason_text)
    except ValidationFailed as error:
        problems.update(error.fields)
        if not problems.get("confirmation"):
            raise
    if problems:
        wanted = [label for field, label in (("reason_code", "choose a reason"), ("reason_text", "say why"),
                                             ("confirmation", f"type {runbook.key}")) if field in problems]
        raise ValidationFailed("To start the run, " + ", ".join(wanted) + ".", fields=problems)

    runbook_context = _runbook_context(runbook, target, source)
    if release:
        runbook_context["release"] = release
    context = {"runbook": runbook_context, "preflight": preflight.as_context(), **_initiator_context(actor)}
    if reason:
        context["reason"] = reason
    digest = identity_hash(runbook.key, target.workspace.id, target.tenant_id)
    for _ in range(5):
        run_id = db.session.scalar(
            insert(OperationRun).values(
                workspace_id=target.workspace.id, tenant_id=target.tenant_id,
                user_id=actor.id if actor.kind == "user" else None, initiator_name=_initiator_name(actor),
                type=runbook.key, run_identity_hash=digest, summary_counts=summary.initial(), context=context)
            .on_conflict_do_nothing(index_elements=["run_identity_hash"], index_where=text(ACTIVE_RUN_SQL))
            .returning(OperationRun.id))
        if run_id is not None:
            audit.record(actor=actor, action="platform.ops.runbooks.start", ref_type="operation_run", ref_id=run_id,
                         workspace_id=target.workspace.id, tenant_id=target.tenant_id,
                         context={**context, "operation_run_id": run_id})
            after_commit(db.session, functools.partial(_queue, run_id))
            db.session.commit()
            return Started(run=db.session.get(OperationRun, run_id), created=True)
        db.session.rollback()
        existing = db.session.scalar(select(OperationRun).where(OperationRun.run_identity_hash == digest,
                                                                text(ACTIVE_RUN_SQL))
                                     .execution_options(populate_existing=True))
        if existing is not None:
            return Started(run=existing, created=False)
    raise RuntimeError("could not start or find the active run")  # only under pathological churn


def _queue(run_id: int) -> None:
    from jobs.runbooks import queue_fan_out

    queue_fan_out(run_id)


def _initiator_name(actor: Actor) -> str:
    return (actor.name or actor.label)[:255]


def request_cancel(*, actor: Actor, run_id: int) -> OperationRun:
    """Ask a run to stop: parts stop between chunks; a run not yet fanned out ends at once."""
    run = get_run(run_id)
    _require(actor, get_runbook(run.type))
    if not run.is_active:
        raise ValidationFailed("The run has already finished.", fields={"run": "completed"})
    db.session.execute(text("UPDATE operation_runs SET cancel_requested_at = coalesce(cancel_requested_at, now()),"
                            " updated_at = now() WHERE id = :id"), {"id": run.id})
    audit.record(actor=actor, action="update", ref_type="operation_run", ref_id=run.id,
                 workspace_id=run.workspace_id, tenant_id=run.tenant_id,
                 context={"cancel_requested": True, "runbook": {"key": run.type}})
    db.session.commit()
    from app.runbooks import execution

    execution.cancel_unstarted(run.id)
    return get_run(run_id)


def get_run(run_id: int) -> OperationRun:
    run = db.session.scalar(select(OperationRun).where(OperationRun.id == run_id)
                            .execution_options(populate_existing=True))
    if run is None:
        raise NotFound("No such run.")
    return run


# -- reading runs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartView:
    part: OperationRunPart
    tenant_name: str

    @property
    def percent(self) -> int:
        return _percent(self.part.processed, self.part.total, self.part.status)


@dataclass(frozen=True)
class RunView:
    run: OperationRun
    runbook: Runbook | None
    workspace_name: str
    tenant_name: str | None
    parts: list[PartView]
    now: datetime

    @property
    def counts(self) -> dict[str, int]:
        return summary.initial(**{k: int(v) for k, v in (self.run.summary_counts or {}).items()})

    @property
    def percent(self) -> int:
        counts = self.counts
        return _percent(counts["processed"], counts["total"], "succeeded" if self.run.outcome == "succeeded" else "")

    @property
    def elapsed_seconds(self) -> float:
        if self.run.started_at is None:
            return 0.0
        return max(((self.run.completed_at or self.now) - self.run.started_at).total_seconds(), 0.0)

    @property
    def rate(self) -> float | None:
        """Rows per second so far."""
        elapsed = self.elapsed_seconds
        return self.counts["processed"] / elapsed if elapsed >= 1 else None

    @property
    def eta_seconds(self) -> int | None:
        counts, rate = self.counts, self.rate
        if self.run.status == "completed" or not rate or counts["total"] <= counts["processed"]:
            return None
        return int((counts["total"] - counts["processed"]) / rate)

    @property
    def parts_by_status(self) -> dict[str, int]:
        tally: dict[str, int] = {}
        for view in self.parts:
            tally[view.part.status] = tally.get(view.part.status, 0) + 1
        return tally


def _percent(done: int, total: int, status: str) -> int:
    if status in ("succeeded", "failed", "cancelled") and total <= done:
        return 100
    if total <= 0:
        return 100 if status == "succeeded" else 0
    return min(int(done * 100 / total), 100 if status == "succeeded" else 99)


def run_view(run_id: int) -> RunView:
    run = get_run(run_id)
    names = dict(db.session.execute(select(Tenant.id, Tenant.name).where(Tenant.workspace_id == run.workspace_id)).all())
    parts = db.session.scalars(select(OperationRunPart).where(OperationRunPart.run_id == run.id)
                               .order_by(OperationRunPart.tenant_id.nulls_first())
                               .execution_options(populate_existing=True)).all()
    workspace_name = db.session.scalar(select(Workspace.name).where(Workspace.id == run.workspace_id))
    now = db.session.scalar(select(func.now()))
    return RunView(run=run, runbook=RUNBOOKS.get(run.type), workspace_name=workspace_name,
                   tenant_name=names.get(run.tenant_id), now=now,
                   parts=[PartView(part=p, tenant_name=names.get(p.tenant_id, "Whole workspace")
                                   if p.tenant_id else "Whole workspace") for p in parts])


@dataclass(frozen=True)
class RunFilters:
    runbook: str | None = None
    workspace_id: int | None = None
    status: str | None = None
    outcome: str | None = None
    source: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class RunPage:
    rows: list[OperationRun]
    older_cursor: int | None = None  # before= for the next (older) page
    newer_cursor: int | None = None


def list_runs(*, filters: RunFilters, before: int | None = None, after: int | None = None, limit: int = 50
              ) -> RunPage:
    """Newest first, keyset-paged on id: `before` an id for older runs, `after` one for newer."""
    newer_first = after is None
    query = select(OperationRun).order_by(OperationRun.id.desc() if newer_first else OperationRun.id).limit(limit + 1)
    if before is not None and newer_first:
        query = query.where(OperationRun.id < before)
    if after is not None:
        query = query.where(OperationRun.id > after)
    if filters.runbook:
        query = query.where(OperationRun.type == filters.runbook)
    if filters.workspace_id:
        query = query.where(OperationRun.workspace_id == filters.workspace_id)
    if filters.status:
        query = query.where(OperationRun.status == filters.status)
    if filters.outcome:
        query = query.where(OperationRun.outcome == filters.outcome)
    if filters.source:
        query = query.where(OperationRun.context["runbook"]["source"].astext == filters.source)
    if filters.since:
        query = query.where(OperationRun.created_at >= filters.since)
    rows = db.session.scalars(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not newer_first:
        rows.reverse()
        return RunPage(rows=rows, older_cursor=rows[-1].id if rows else None,
                       newer_cursor=rows[0].id if more and rows else None)
    return RunPage(rows=rows, older_cursor=rows[-1].id if more else None,
                   newer_cursor=rows[0].id if before is not None and rows else None)


def active_runs() -> list[OperationRun]:
    return db.session.scalars(select(OperationRun).where(text(ACTIVE_RUN_SQL)).order_by(OperationRun.id)).all()


def run_as_json(run: OperationRun) -> dict:
    """The run as the CLI prints it and the API would return it."""
    def stamp(value):
        return value.isoformat() if isinstance(value, datetime) else value

    return {"id": run.id, "type": run.type, "workspace_id": run.workspace_id, "tenant_id": run.tenant_id,
            "user_id": run.user_id, "initiator_name": run.initiator_name, "status": run.status,
            "outcome": run.outcome, "run_identity_hash": run.run_identity_hash,
            "summary_counts": summary.initial(**{k: int(v) for k, v in (run.summary_counts or {}).items()}),
            "failure_summary": run.failure_summary or [], "context": run.context or {},
            "created_at": stamp(run.created_at), "started_at": stamp(run.started_at),
            "completed_at": stamp(run.completed_at)}


def workers_listening() -> int:
    """Live RQ workers on the runbooks queue (the CLI runs the jobs itself when there are none)."""
    from rq import Worker

    from app.extensions import get_redis
    from jobs.queues import get_queue

    queue = get_queue("runbooks")
    return sum(1 for worker in Worker.all(connection=get_redis(), queue=queue) if worker.state != "suspended")


def deploy_release() -> str:
    """What the deploy hook runs once for: OPSDESK_RELEASE if set, else the schema revision."""
    import os

    release = os.environ.get("OPSDESK_RELEASE", "").strip()
    if release:
        return release[:100]
    revision = db.session.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))
    return f"schema-{revision}"


def deploy_hook(*, release: str) -> list[dict]:
    """Start every runbook marked to run after a deploy, on all tenants of every workspace, once per
    release: a second call for the same release starts nothing. Returns what it did per run."""
    actor = Actor.system("deploy_hook")
    done = []
    for workspace in db.session.scalars(select(Workspace).order_by(Workspace.id)).all():
        for runbook in RUNBOOKS.values():
            if not runbook.run_after_deploy or ALL_TENANTS not in runbook.scopes:
                continue
            earlier = db.session.scalar(
                select(OperationRun).where(OperationRun.workspace_id == workspace.id, OperationRun.type == runbook.key,
                                           OperationRun.context["runbook"]["source"].astext == "deploy_hook",
                                           OperationRun.context["runbook"]["release"].astext == release)
                .order_by(OperationRun.id.desc()).limit(1).execution_options(populate_existing=True))
            if earlier is not None and earlier.outcome != "failed":
                done.append({"workspace": workspace.slug, "runbook": runbook.key, "run_id": earlier.id,
                             "action": "already_done" if earlier.status == "completed" else "already_running"})
                continue
            target = Target(workspace=workspace, tenant=None)
            found = preflight(actor=actor, runbook=runbook, target=target, source="deploy_hook")
            started = start(actor=actor, preflight=found, source="deploy_hook", reason_code="DATA_REPAIR",
                            reason_text=f"Runbooks after deploying release {release}", release=release)
            done.append({"workspace": workspace.slug, "runbook": runbook.key, "run_id": started.run.id,
                         "action": "started" if started.created else "joined_active_run",
                         "affected_count": found.affected_count})
    return done
