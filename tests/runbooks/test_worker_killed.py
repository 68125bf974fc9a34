"""A worker killed with SIGKILL in the middle of a run: nothing half-applied, nothing counted
twice; the watchdog resumes the lost part from its last committed chunk and the run ends with
counts equal to the truth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.config import ROOT
from app.extensions import db
from app.runbooks import service
from jobs import runbooks as runbook_jobs
from tests.runbooks.helpers import parts, seed_findings, start, survey, work_all

WORKER = """
import sys
from app import create_app
from app.config import TestConfig
from jobs.worker import run_worker

database_url, redis_url, prefix, kind = sys.argv[1:5]
app = create_app(TestConfig(database_url=database_url, redis_url=redis_url, redis_prefix=prefix))
run_worker(app, with_scheduler=False, queue_names=["runbooks"], simple=kind == "simple")
"""


def kill_worker_and_horse(pid: int) -> None:
    """SIGKILL the worker and its work horse (RQ puts the horse in its own session, so a signal to
    the worker's process group would not reach it)."""
    try:
        horses = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        horses = []
    for victim in (*horses, pid):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("kind", ["simple", "forking"])
def test_sigkill_mid_run_loses_and_double_counts_nothing(app, app_ctx, world, database_url, server_urls,
                                                         redis_prefix, kind):
    seed_findings(world, per_tenant=3000, broken_ratio=0.3)
    log = tempfile.TemporaryFile(mode="w+")
    # the default worker (jobs in the worker process) or a forking one, with tiny chunks
    worker = subprocess.Popen([sys.executable, "-c", WORKER, database_url, server_urls[1], redis_prefix, kind],
                              cwd=ROOT, env={**os.environ, "OPSDESK_RUNBOOK_CHUNK_ROWS": "20"}, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        found, started = start(world)
        run_id = started.run.id
        deadline = time.monotonic() + 60
        while True:
            db.session.rollback()
            processed = service.get_run(run_id).summary_counts.get("processed", 0)
            if processed >= 200:
                break
            assert time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.05)
        kill_worker_and_horse(worker.pid)  # mid-chunk
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            kill_worker_and_horse(worker.pid)
        log.seek(0)
        print("worker log (tail):", log.read()[-3000:])
        log.close()

    db.session.rollback()
    halfway = service.get_run(run_id)
    assert halfway.status == "running" and 0 < halfway.summary_counts["processed"] < found.total_count
    lost = [p for p in parts(run_id) if p["status"] == "running"]
    assert lost, "a part was in flight when the worker died"
    # committed chunks are counted exactly: the parts' counters add up to the run's
    assert sum(p["processed"] for p in parts(run_id)) == halfway.summary_counts["processed"]

    # time passes: the heartbeat goes stale and the watchdog resumes the part on a new worker
    db.session.execute(text("UPDATE operation_run_parts SET heartbeat_at = now() - interval '1 hour'"
                            " WHERE run_id = :id AND status = 'running'"), {"id": run_id})
    db.session.commit()
    report = runbook_jobs.watchdog()
    assert report["requeued"] >= len(lost)
    work_all(app)

    db.session.rollback()
    run = service.get_run(run_id)
    assert (run.status, run.outcome) == ("completed", "succeeded")
    counts = run.summary_counts
    assert counts["processed"] == counts["total"] == found.total_count
    assert counts["updated"] == found.affected_count
    assert counts["updated"] + counts["skipped"] == counts["processed"] and counts["failed"] == 0
    assert survey(world).affected == 0
    assert max(p["attempts"] for p in parts(run_id)) >= 2
