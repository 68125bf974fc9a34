"""The findings backfill benchmark: findings.lifecycle.backfill over 1,000,000 findings in 100
tenants, end to end through RQ with two worker processes, against one set-based SQL UPDATE of the
same rows on the same data in the same run; and the workers' peak memory.

The generated data (findings, 1-5 events each, 10 % broken: stale fields and duplicates) is made
once in a seed database and copied for every measurement (CREATE DATABASE … TEMPLATE), so each
run repairs the same inconsistencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SEED_DB, RUN_DB = "opsdesk_bench_findings_seed", "opsdesk_bench_findings"
WORKSPACE = "bench-findings"
QUEUE_PREFIX = "opsdesk-bench-backfill"
MB = 1024 * 1024


@dataclass
class BackfillResult:
    findings: int
    tenants: int
    affected: int
    baseline_seconds: float
    baseline_rows_per_second: float
    differing_only_seconds: float
    run_seconds: float
    run_rows_per_second: float
    preflight_seconds: float
    updated: int
    worker_peak_pss_mb: list[float]  # each worker process plus its work horse, if it forks one
    process_peak_rss_mb: float
    verified: bool

    @property
    def ratio(self) -> float:
        return self.run_rows_per_second / self.baseline_rows_per_second

    def as_json(self) -> dict:
        return {**self.__dict__, "ratio": self.ratio}


def _admin(base_url: str) -> str:
    return make_url(base_url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def _url(base_url: str, name: str, driver: str | None = None) -> str:
    url = make_url(base_url).set(database=name)
    if driver:
        url = url.set(drivername=driver)
    return url.render_as_string(hide_password=False)


def _app_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "SECRET_KEY": "opsdesk-benchmark-secret-not-for-production-0123456789",
            "OPSDESK_REDIS_PREFIX": QUEUE_PREFIX, "OPSDESK_QUEUE_PREFIX": QUEUE_PREFIX}


def _with_app(env: dict[str, str], fn: Callable):
    from app import create_app
    from app.config import Config
    from app.extensions import db

    app = create_app(Config({**os.environ, **env}))
    try:
        with app.app_context():
            return fn(app)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def ensure_seed(base_url: str, redis_url: str, *, findings: int, tenants: int, broken_ratio: float, fresh: bool,
                log: Callable[[str], None]) -> None:
    with psycopg.connect(_admin(base_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SEED_DB,)).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{SEED_DB}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{SEED_DB}"')
    env = {**os.environ, **_app_env(_url(base_url, SEED_DB), redis_url)}
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def seed(app):
        from sqlalchemy import select, text

        from app.actors import Actor
        from app.extensions import db
        from app.findings.generator import generate
        from app.workspaces import service as workspaces
        from app.workspaces.models import Tenant

        workspace, _ = workspaces.ensure_workspace(slug=WORKSPACE, name="Benchmark Findings",
                                                   actor=Actor.system("bench"))
        db.session.commit()
        have = db.session.scalar(text("SELECT count(*) FROM findings WHERE workspace_id = :w"), {"w": workspace.id})
        if have >= findings:
            return
        if have:
            raise SystemExit(f"{SEED_DB} holds a partial fixture; run with --fresh")
        admin = Actor(kind="system", id=None, label="system:bench", workspace_id=workspace.id)
        for n in range(tenants):
            workspaces.create_tenant(actor=admin, slug=f"customer-{n:03d}", name=f"Customer {n:03d}", commit=False)
        db.session.commit()
        tenant_ids = list(db.session.scalars(select(Tenant.id).where(Tenant.workspace_id == workspace.id)))
        log(f"generating {findings:,} findings with events in {tenants} tenants (once; kept in {SEED_DB})")
        started, done = time.perf_counter(), [0]

        def progress(added: int) -> None:
            done[0] += added
            if done[0] % (findings // 10 or 1) < added:
                log(f"  {done[0]:,} findings ({done[0] / (time.perf_counter() - started):,.0f}/s)")

        generate(workspace_id=workspace.id, per_tenant=findings // tenants, broken_ratio=broken_ratio,
                 tenant_ids=tenant_ids, progress=progress)
        db.session.commit()

    _with_app(_app_env(_url(base_url, SEED_DB), redis_url), seed)
    with psycopg.connect(_url(base_url, SEED_DB, "postgresql"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE findings")
        conn.execute("VACUUM ANALYZE monitoring_events")


def fresh_copy(base_url: str) -> str:
    """The seed database copied as it was generated: every measurement repairs the same data."""
    with psycopg.connect(_admin(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        try:
            conn.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{SEED_DB}" STRATEGY FILE_COPY')
        except psycopg.errors.SyntaxError:  # PostgreSQL < 15
            conn.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{SEED_DB}"')
    return _url(base_url, RUN_DB)


def measure_baselines(database_url: str, workspace_id: int) -> tuple[int, float, float]:
    """One set-based UPDATE of every finding from its events, rolled back, twice: writing every
    row, and writing only the rows that differ. (findings, seconds writing all, seconds writing
    the differing rows only)."""
    from app.findings.lifecycle import _RECOMPUTE_ALL

    sql = _RECOMPUTE_ALL.text.replace(":workspace_id", "%(workspace_id)s").replace(":tenant_id", "%(tenant_id)s")
    every_row = sql[:sql.rindex("WHERE f.id = t.id")] + "WHERE f.id = t.id"
    timings = []
    with psycopg.connect(make_url(database_url).set(drivername="postgresql").render_as_string(
            hide_password=False)) as conn:
        findings = conn.execute("SELECT count(*) FROM findings WHERE workspace_id = %s", (workspace_id,)).fetchone()[0]
        for statement in (every_row, sql):
            started = time.perf_counter()
            conn.execute(statement, {"workspace_id": workspace_id, "tenant_id": None})
            timings.append(time.perf_counter() - started)
            conn.rollback()
            conn.autocommit = True
            conn.execute("VACUUM findings")  # the rolled-back row versions would slow the next step down
            conn.autocommit = False
    return findings, timings[0], timings[1]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in bytes of one process; PSS shares the pages a fork still shares fairly."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
            elif line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return pss, rss


def run_backfill(base_url: str, redis_url: str, *, workers: int, log: Callable[[str], None]) -> BackfillResult:
    database_url = fresh_copy(base_url)
    env = _app_env(database_url, redis_url)

    def workspace_id(app):
        from sqlalchemy import text

        from app.extensions import db

        return db.session.scalar(text("SELECT id FROM workspaces WHERE slug = :s"), {"s": WORKSPACE})

    ws = _with_app(env, workspace_id)
    findings, baseline_seconds, differing_seconds = measure_baselines(database_url, ws)
    log(f"baseline: one UPDATE of all {findings:,} findings from their events in {baseline_seconds:.1f}s "
        f"({findings / baseline_seconds:,.0f} rows/s); writing only the rows that differ {differing_seconds:.1f}s "
        f"({findings / differing_seconds:,.0f} rows/s)")

    # the Procfile's worker (`--fork` in BENCH_WORKER_ARGS measures forking workers instead)
    processes = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--no-scheduler",
                                   *os.environ.get("BENCH_WORKER_ARGS", "").split()],
                                  cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
    peak_pss = [0] * workers
    peak_rss = 0

    def sample() -> None:
        nonlocal peak_rss
        for index, process in enumerate(processes):
            total = 0
            for pid in [process.pid, *_children(process.pid)]:
                pss, rss = _memory(pid)
                total += pss
                peak_rss = max(peak_rss, rss)
            peak_pss[index] = max(peak_pss[index], total)

    def measure(app):
        from rq import Worker
        from sqlalchemy import text

        from app.actors import Actor
        from app.extensions import db, get_redis
        from app.findings import lifecycle
        from app.runbooks import service
        from jobs.queues import get_queue

        deadline = time.time() + 60
        while len(Worker.all(connection=get_redis(), queue=get_queue("runbooks"))) < workers:
            if time.time() > deadline:
                raise SystemExit("the RQ workers did not start")
            time.sleep(0.2)
        actor = Actor.system("bench")
        runbook = service.get_runbook("findings.lifecycle.backfill")
        target = service.resolve_target(runbook=runbook, workspace=WORKSPACE, tenant=None, all_tenants=True)
        started = time.perf_counter()
        found = service.preflight(actor=actor, runbook=runbook, target=target, source="cli")
        preflight_seconds = time.perf_counter() - started
        log(f"preflight: {found.affected_count:,} of {found.total_count:,} findings to repair "
            f"({preflight_seconds:.1f}s)")
        run = service.start(actor=actor, preflight=found, source="cli", reason_code="DATA_REPAIR",
                            reason_text="benchmark of the findings backfill").run
        shown = -1
        while True:
            sample()
            db.session.rollback()
            view = service.run_view(run.id)
            if view.percent // 10 != shown:
                shown = view.percent // 10
                log(f"  run #{run.id}: {view.percent}% ({view.counts['processed']:,} findings)")
            if view.run.status == "completed":
                break
            time.sleep(0.2)
        run = view.run
        seconds = (run.completed_at - run.created_at).total_seconds()
        after = lifecycle.survey(workspace_id=ws)
        counts = run.summary_counts
        verified = (run.outcome == "succeeded" and after.affected == 0 and counts["processed"] == counts["total"]
                    == found.total_count and counts["updated"] == found.affected_count)
        tenants = db.session.scalar(text("SELECT count(*) FROM tenants WHERE workspace_id = :w"), {"w": ws})
        return BackfillResult(
            findings=found.total_count, tenants=tenants, affected=found.affected_count,
            baseline_seconds=baseline_seconds, baseline_rows_per_second=findings / baseline_seconds,
            differing_only_seconds=differing_seconds,
            run_seconds=seconds, run_rows_per_second=found.total_count / seconds, preflight_seconds=preflight_seconds,
            updated=counts["updated"], worker_peak_pss_mb=[round(p / MB, 1) for p in peak_pss],
            process_peak_rss_mb=round(peak_rss / MB, 1), verified=verified)

    try:
        return _with_app(env, measure)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
