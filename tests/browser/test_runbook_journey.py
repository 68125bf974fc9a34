"""Journey through /system runbooks: an operator preflights the findings backfill for all tenants,
is refused without a reason, confirms, watches the live progress reach 100 % and opens the run's
audit entries. The run is worked by a real RQ worker process beside the live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import pytest
from playwright.sync_api import Page, expect

from app.config import ROOT
from app.findings import lifecycle
from tests.factories import PASSWORD, make_platform_user
from tests.runbooks.helpers import seed_findings

KEY = "findings.lifecycle.backfill"
PANEL = "#runbook-findings-lifecycle-backfill"
CHUNK_ROWS = 400  # small chunks: each tenant's part takes several transactions
RUN_TIMEOUT = 90_000  # a cold worker process, on a machine shared with benchmarks

# The worker process builds the same test application (same database, same Redis prefix) and
# runs the production worker entry on the queues a run uses.
WORKER = """
import sys
from app import create_app
from app.config import TestConfig
from jobs.worker import run_worker

database_url, redis_url, prefix = sys.argv[1:4]
app = create_app(TestConfig(database_url=database_url, redis_url=redis_url, redis_prefix=prefix))
run_worker(app, with_scheduler=False, queue_names=["runbooks", "notifications"])
"""


@pytest.fixture()
def rq_worker(database_url, server_urls, redis_prefix):
    """An RQ worker process for the test's duration, stopped (warm, then hard) at the end."""
    log = tempfile.TemporaryFile(mode="w+")
    env = {**os.environ, "OPSDESK_RUNBOOK_CHUNK_ROWS": str(CHUNK_ROWS)}
    process = subprocess.Popen([sys.executable, "-c", WORKER, database_url, server_urls[1], redis_prefix],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    log.seek(0)
    print("worker log (tail):", log.read()[-4000:])  # shown by pytest when the journey fails
    log.close()


def test_operator_runs_the_findings_backfill_on_all_tenants(page: Page, world, rq_worker):
    seed_findings(world, per_tenant=1500, broken_ratio=0.3)
    expected = lifecycle.survey(workspace_id=world.workspace.id, tenant_id=None)
    assert expected.total > 2 * CHUNK_ROWS and expected.affected > 0
    operator = make_platform_user("platform_operator")

    # sign in to /system and open Runbooks from the navigation
    page.goto("/system/")
    expect(page.locator("h1")).to_have_text("Sign in to /system")
    page.fill("#email", operator.email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.locator("nav.sidenav").get_by_role("link", name="Runbooks", exact=True).click()
    expect(page.locator("h1")).to_have_text("Runbooks")
    panel = page.locator(PANEL)
    expect(panel).to_contain_text(KEY)

    # preflight on all tenants of the world's workspace
    expect(panel.locator("input[name=scope][value=all_tenants]")).to_be_checked()
    workspace_select = panel.locator("select[name=workspace]")
    if workspace_select.count():  # only shown when the database holds more than one workspace
        workspace_select.select_option(str(world.workspace.id))
    panel.locator("#preflight-findings-lifecycle-backfill").click()
    expect(page.locator("h1")).to_have_text("Confirm: Backfill findings lifecycle")
    expect(page.locator("#affected-count")).to_have_text(f"{expected.affected:,}")
    expect(page.locator("#total-count")).to_have_text(f"{expected.total:,}")
    expect(page.locator("#estimated-tenants")).to_have_text("2")
    expect(page.locator("#preflight-result")).to_contain_text("every tenant")

    # confirming without a reason is refused, and the operator stays on the confirm screen
    page.fill("#confirmation", KEY)
    page.click("#start-run")
    expect(page.locator("#confirm-error")).to_contain_text("A reason is required for a run on all tenants")
    expect(page.locator("h1")).to_have_text("Confirm: Backfill findings lifecycle")
    reason_field = page.locator(".field", has=page.locator("#reason_text"))
    expect(reason_field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(reason_field.locator(".error")).to_contain_text("required")
    expect(page.locator("#confirmation")).to_have_value(KEY)  # what was typed is kept
    expect(page.locator("#affected-count")).to_have_text(f"{expected.affected:,}")

    # with a reason the run starts and the operator lands on its page
    page.select_option("#reason_code", "DATA_REPAIR")
    page.fill("#reason_text", "Findings drifted after the intake outage; ticket OPS-2231.")
    page.click("#start-run")
    expect(page).to_have_url(re.compile(r"/system/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".alert-success")).to_contain_text(f"Run #{run_id} started.")
    expect(page.locator("#run-details")).to_contain_text("DATA_REPAIR")
    page.evaluate("window.__opsdeskJourney = true")

    # the progress panel polls itself until the worker has finished, then stops
    progress = page.locator("#run-progress")
    expect(page.locator("#run-progress[data-status=completed]")).to_have_count(1, timeout=RUN_TIMEOUT)
    expect(page.locator("#run-percent")).to_have_text("100%")
    expect(page.locator("#run-outcome")).to_have_text("succeeded")
    expect(page.locator("#run-progress-bar")).to_have_attribute("value", "100")
    expect(page.locator("#run-counts td[data-key=processed]")).to_have_text(f"{expected.total:,}")
    expect(page.locator("#run-counts td[data-key=updated]")).to_have_text(f"{expected.affected:,}")
    expect(page.locator("#run-counts td[data-key=tenants]")).to_have_text("2")
    expect(page.locator("#run-parts tbody tr")).to_have_count(2)
    expect(page.locator("#run-parts .part-succeeded")).to_have_count(2)
    assert progress.get_attribute("hx-trigger") is None, "a finished run keeps polling"
    expect(page.locator("#cancel-run")).to_have_count(0)
    assert page.evaluate("window.__opsdeskJourney === true"), "the run page reloaded instead of polling"
    assert lifecycle.survey(workspace_id=world.workspace.id, tenant_id=None).affected == 0

    # the run's audit entries: who started it, and that it completed
    page.click("#run-audit-link")
    expect(page).to_have_url(re.compile(r"/system/audit\?"))
    results = page.locator("#results")
    expect(results).to_contain_text("platform.ops.runbooks.start")
    expect(results).to_contain_text("platform.ops.runbooks.completed")
    expect(results).to_contain_text(operator.email)

    assert not [p for p in page.console_problems if "Content Security Policy" in p], page.console_problems
