"""/system runbooks over HTTP: catalog, preflight → confirm → start, the live run page, cancel,
the runs list with its filters and paging, and who may do what."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, text

from app.extensions import db
from app.findings import lifecycle
from app.runbooks.models import OperationRun
from tests.conftest import html_has_no_layout
from tests.factories import make_platform_user
from tests.runbooks.helpers import findings_state, seed_findings, work_all

KEY = "findings.lifecycle.backfill"
TOKEN_RE = re.compile(r'name="preflight" value="([^"]+)"')
REASON = {"reason_code": "DATA_REPAIR", "reason_text": "Findings drifted after the intake outage (INC-1042)."}


# -- helpers -------------------------------------------------------------------------------------

def sign_in_operator(client, role: str = "platform_operator"):
    operator = make_platform_user(role)
    assert client.login_system(operator.email).status_code == 303
    return operator


def target_fields(world, tenant=None) -> dict:
    return {"scope": "single_tenant" if tenant else "all_tenants", "workspace": world.workspace.id,
            "tenant": tenant.id if tenant else ""}


def post_preflight(client, world, key: str = KEY, tenant=None):
    return client.post(f"/system/runbooks/{key}/preflight", target_fields(world, tenant))


def preflight_token(client, world, key: str = KEY, tenant=None) -> str:
    response = post_preflight(client, world, key, tenant)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return TOKEN_RE.search(response.get_data(as_text=True)).group(1)


def post_start(client, world, token: str, key: str = KEY, tenant=None, htmx: bool = False, **fields):
    data = {**target_fields(world, tenant), "preflight": token, "confirmation": key, **fields}
    return client.post(f"/system/runbooks/{key}/start", data, htmx=htmx)


def runs_of(world) -> list[OperationRun]:
    return db.session.scalars(select(OperationRun).where(OperationRun.workspace_id == world.workspace.id)
                              .order_by(OperationRun.id).execution_options(populate_existing=True)).all()


def audit_actions(world) -> list[str]:
    return list(db.session.scalars(text("SELECT action FROM audit_events WHERE workspace_id = :w ORDER BY id"),
                                   {"w": world.workspace.id}))


def run_id_from(response) -> int:
    location = response.headers.get("HX-Redirect") or response.headers["Location"]
    match = re.fullmatch(r"/system/runs/(\d+)", location)
    assert match, location
    return int(match.group(1))


def started_run(client, world, tenant=None) -> int:
    token = preflight_token(client, world, tenant=tenant)
    response = post_start(client, world, token, tenant=tenant, **REASON)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return run_id_from(response)


def progress_section(body: str) -> str:
    match = re.search(r'<section id="run-progress".*?</section>', body, re.S)
    assert match, body[:500]
    return match.group(0)


# -- the catalog and who gets in -----------------------------------------------------------------

def test_the_catalog_lists_every_runbook_with_a_preflight_form(client, world):
    sign_in_operator(client)
    response = client.get("/system/runbooks")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    for key in ("findings.lifecycle.backfill", "incidents.sla.recompute", "audit.chain.verify"):
        dashed = key.replace(".", "-")
        assert f'id="runbook-{dashed}"' in body and f'id="preflight-{dashed}"' in body
        assert f'action="/system/runbooks/{key}/preflight"' in body
    assert "You may not run this runbook" not in body


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/system/runbooks"), ("post", f"/system/runbooks/{KEY}/preflight"),
    ("post", f"/system/runbooks/{KEY}/start"), ("get", "/system/runs"), ("get", "/system/runs/1"),
    ("post", "/system/runs/1/cancel")])
def test_console_users_are_sent_to_the_system_sign_in(client, world, method, path):
    client.login(world.email("workspace_admin"))
    response = getattr(client, method)(path)
    assert response.status_code == 303 and response.headers["Location"].startswith("/system/login")
    assert runs_of(world) == []


def test_unknown_runbooks_and_runs_are_not_found(client, world):
    sign_in_operator(client)
    assert post_preflight(client, world, key="no.such.runbook").status_code == 404
    assert client.post("/system/runbooks/no.such.runbook/start", {"confirmation": "no.such.runbook"}).status_code == 404
    assert client.get("/system/runs/987654321").status_code == 404
    assert client.get("/system/runs/987654321", htmx=True).status_code == 404
    assert client.post("/system/runs/987654321/cancel").status_code == 404


# -- preflight and confirm -----------------------------------------------------------------------

def test_preflight_shows_the_survey_counts_and_writes_only_its_audit_event(client, world):
    seed_findings(world, per_tenant=100)
    expected = lifecycle.survey(workspace_id=world.workspace.id, tenant_id=None)
    assert expected.affected > 0
    data_before, actions_before = findings_state(world), audit_actions(world)
    sign_in_operator(client)
    response = post_preflight(client, world)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="affected-count">{expected.affected:,}<' in body
    assert f'id="total-count">{expected.total:,}<' in body
    assert 'id="estimated-tenants">2<' in body
    assert "reason_text" in body and "Reason (required)" in body
    assert findings_state(world) == data_before
    assert runs_of(world) == []
    assert audit_actions(world) == [*actions_before, "platform.ops.runbooks.preflight"]


def test_preflight_without_a_scope_is_refused_on_the_catalog(client, world):
    sign_in_operator(client)
    response = client.post(f"/system/runbooks/{KEY}/preflight", {"workspace": world.workspace.id})
    assert response.status_code == 422
    assert "Choose one tenant or all tenants" in response.get_data(as_text=True)
    response = post_preflight(client, world, key="audit.chain.verify", tenant=world.tenant_a)
    assert response.status_code == 422 and "runs on all tenants only" in response.get_data(as_text=True)
    assert "platform.ops.runbooks.preflight" not in audit_actions(world)


def test_all_tenants_without_a_reason_is_refused_with_field_errors(client, world):
    sign_in_operator(client)
    token = preflight_token(client, world)
    response = post_start(client, world, token)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="confirm-error"' in body and "A reason is required for a run on all tenants" in body
    assert body.count('class="field has-error"') == 2
    assert 'value="findings.lifecycle.backfill"' in body  # what was typed is kept
    assert TOKEN_RE.search(body).group(1) == token  # still on the confirm screen, same preflight
    assert runs_of(world) == []


def test_a_wrongly_typed_key_is_refused(client, world):
    sign_in_operator(client)
    token = preflight_token(client, world)
    response = post_start(client, world, token, **REASON, confirmation="findings.lifecycle")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "type findings.lifecycle.backfill to confirm" in body
    assert body.count('class="field has-error"') == 1
    assert runs_of(world) == []


def _aged_token(app, world, minutes: int) -> str:
    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - minutes * 60

    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="opsdesk-runbook-preflight", signer=PastSigner)
    return serializer.dumps({"key": KEY, "workspace_id": world.workspace.id, "tenant_id": None,
                             "affected_count": 0, "total_count": 0, "estimated_tenants": 2})


def test_forged_expired_or_mismatched_preflights_start_nothing(app, client, world):
    sign_in_operator(client)
    tenant_token = preflight_token(client, world, tenant=world.tenant_a)
    sla_token = preflight_token(client, world, key="incidents.sla.recompute")
    forged = URLSafeTimedSerializer("not-our-secret", salt="opsdesk-runbook-preflight").dumps(
        {"key": KEY, "workspace_id": world.workspace.id, "tenant_id": None, "affected_count": 0,
         "total_count": 0, "estimated_tenants": 2})
    cases = {
        "": "Run the preflight first",
        forged: "Run the preflight first",
        tenant_token + "x": "Run the preflight first",
        tenant_token: "another runbook or scope",  # one tenant's preflight, posted for all tenants
        sla_token: "another runbook or scope",  # another runbook's preflight
        _aged_token(app, world, minutes=16): "more than 15 minutes old",
    }
    for token, message in cases.items():
        response = post_start(client, world, token, **REASON)
        assert response.status_code == 422, token
        assert message in response.get_data(as_text=True), token
    assert runs_of(world) == []
    assert "platform.ops.runbooks.start" not in audit_actions(world)
    # the same recipe, fourteen minutes old, is accepted: the refusals above were for the reasons named
    response = post_start(client, world, _aged_token(app, world, minutes=14), **REASON)
    assert response.status_code == 303 and len(runs_of(world)) == 1


# -- start ---------------------------------------------------------------------------------------

def test_confirming_starts_one_run_and_a_second_confirm_returns_it(client, world):
    operator = sign_in_operator(client)
    token = preflight_token(client, world)
    first = post_start(client, world, token, **REASON)
    assert first.status_code == 303
    run_id = run_id_from(first)
    runs = runs_of(world)
    assert [r.id for r in runs] == [run_id]
    run = runs[0]
    assert (run.status, run.outcome, run.tenant_id) == ("queued", "pending", None)
    assert run.context["reason"] == {"reason_code": "DATA_REPAIR", "reason_text": REASON["reason_text"]}
    assert run.context["runbook"]["source"] == "system_ui"
    assert run.context["platform_initiator"]["email"] == operator.email
    assert f"Run #{run_id} started." in client.get(first.headers["Location"]).get_data(as_text=True)

    again = post_start(client, world, preflight_token(client, world), **REASON)
    assert again.status_code == 303 and run_id_from(again) == run_id
    assert [r.id for r in runs_of(world)] == [run_id]
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert f"Run #{run_id} of this runbook and scope was already active; here it is." in page
    assert audit_actions(world).count("platform.ops.runbooks.start") == 1


def test_an_htmx_confirm_redirects_with_hx_redirect(client, world):
    sign_in_operator(client)
    token = preflight_token(client, world, tenant=world.tenant_b)
    response = post_start(client, world, token, tenant=world.tenant_b, htmx=True)
    assert response.status_code == 204
    run_id = run_id_from(response)
    assert [(r.id, r.tenant_id) for r in runs_of(world)] == [(run_id, world.tenant_b.id)]
    assert "reason" not in runs_of(world)[0].context  # one tenant, no break-glass: the reason is optional


def test_under_break_glass_a_single_tenant_run_needs_a_reason(client, world):
    sign_in_operator(client)
    elevated = client.post("/system/break-glass", {"reason": "Stuck backfill on a customer tenant"})
    assert elevated.status_code == 303
    confirm = post_preflight(client, world, tenant=world.tenant_a).get_data(as_text=True)
    assert "Reason (required)" in confirm and "under break-glass elevation" in confirm
    token = TOKEN_RE.search(confirm).group(1)
    refused = post_start(client, world, token, tenant=world.tenant_a)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "A reason is required under break-glass elevation" in body
    assert runs_of(world) == []
    accepted = post_start(client, world, token, tenant=world.tenant_a, **REASON)
    assert accepted.status_code == 303
    [run] = runs_of(world)
    assert run.tenant_id == world.tenant_a.id and run.context["reason"]["reason_code"] == "DATA_REPAIR"
    assert run.context["platform_initiator"]["is_break_glass"] is True
    details = client.get(accepted.headers["Location"]).get_data(as_text=True)
    assert '<span class="tag danger">break-glass</span>' in details


# -- the run page --------------------------------------------------------------------------------

def test_the_run_page_polls_while_active_and_stops_when_complete(app, client, world):
    seed_findings(world, per_tenant=100)
    expected = lifecycle.survey(workspace_id=world.workspace.id, tenant_id=None)
    sign_in_operator(client)
    run_id = started_run(client, world)

    page = client.get(f"/system/runs/{run_id}")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    active = progress_section(page.get_data(as_text=True))
    assert 'data-status="queued"' in active and 'id="run-percent">0%<' in active
    assert 'hx-trigger="every 1s"' in active and f'hx-get="/system/runs/{run_id}"' in active
    assert 'hx-swap="outerHTML"' in active and 'id="cancel-run"' in active

    work_all(app)
    done = client.get(f"/system/runs/{run_id}").get_data(as_text=True)
    finished = progress_section(done)
    assert 'data-status="completed"' in finished and 'data-outcome="succeeded"' in finished
    assert 'id="run-percent">100%<' in finished and 'value="100"' in finished
    assert re.search(r'id="run-outcome">\s*succeeded\s*<', finished)
    assert f"{expected.total:,} of {expected.total:,} findings processed" in finished
    assert f'<td data-key="updated">{expected.affected:,}</td>' in finished
    assert "hx-trigger" not in finished and "hx-get" not in finished and 'id="cancel-run"' not in finished
    assert 'id="run-audit-link"' in done
    assert lifecycle.survey(workspace_id=world.workspace.id, tenant_id=None).affected == 0


def test_an_htmx_poll_gets_only_the_progress_fragment(client, world):
    sign_in_operator(client)
    run_id = started_run(client, world, tenant=world.tenant_a)
    response = client.get(f"/system/runs/{run_id}", htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and html_has_no_layout(body)
    assert body.lstrip().startswith('<section id="run-progress"') and body.rstrip().endswith("</section>")
    assert 'hx-trigger="every 1s"' in body
    assert 'id="run-details"' in body  # details (started, completed) refresh with the progress
    assert "HX-Request" in response.headers["Vary"]


def test_cancel_ends_a_run_that_has_not_started(client, world):
    sign_in_operator(client)
    run_id = started_run(client, world)
    response = client.post(f"/system/runs/{run_id}/cancel")
    assert response.status_code == 303 and response.headers["Location"] == f"/system/runs/{run_id}"
    body = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Run #{run_id} will stop after the chunk in progress." in body
    section = progress_section(body)
    assert 'data-status="completed"' in section and 'data-outcome="cancelled"' in section
    assert "hx-trigger" not in section
    [run] = runs_of(world)
    assert (run.status, run.outcome) == ("completed", "cancelled") and run.cancel_requested_at is not None
    again = client.post(f"/system/runs/{run_id}/cancel")
    assert again.status_code == 303
    assert "The run has already finished." in client.get(again.headers["Location"]).get_data(as_text=True)
    assert audit_actions(world).count("platform.ops.runbooks.completed") == 1


def test_cancel_stops_a_running_run_between_chunks(app, client, world):
    from jobs import runbooks as runbook_jobs

    seed_findings(world, per_tenant=50)
    sign_in_operator(client)
    run_id = started_run(client, world)
    assert runbook_jobs.fan_out(run_id) == 2  # the fan-out ran; its two parts wait for a worker
    assert client.post(f"/system/runs/{run_id}/cancel", htmx=True).status_code == 204
    section = progress_section(client.get(f"/system/runs/{run_id}").get_data(as_text=True))
    assert 'data-status="running"' in section and "cancelling" in section and 'id="cancel-run"' not in section
    work_all(app)
    section = progress_section(client.get(f"/system/runs/{run_id}").get_data(as_text=True))
    assert 'data-outcome="cancelled"' in section and "hx-trigger" not in section


# -- the runs list -------------------------------------------------------------------------------

def insert_runs(world, count: int, *, runbook: str = KEY, status: str = "completed", outcome: str = "succeeded",
                source: str = "cli", tenant=None) -> list[int]:
    """Runs written straight to the table: cheap, with valid summary keys and unique identity hashes."""
    ids = db.session.scalars(text("""
        INSERT INTO operation_runs (workspace_id, tenant_id, initiator_name, type, status, outcome, run_identity_hash,
                                    summary_counts, context, started_at, completed_at)
        SELECT :w, :t, 'seeded', CAST(:type AS text), CAST(:status AS text), :outcome, md5(random()::text || g),
               CAST(:counts AS jsonb), jsonb_build_object('runbook', jsonb_build_object(
                   'key', CAST(:type AS text), 'scope', CAST(:scope AS text), 'source', CAST(:source AS text))),
               now(), CASE WHEN CAST(:status AS text) = 'completed' THEN now() END
        FROM generate_series(1, :count) AS g
        RETURNING id
    """), {"w": world.workspace.id, "t": tenant.id if tenant else None, "type": runbook, "status": status,
           "outcome": outcome, "source": source, "scope": "single_tenant" if tenant else "all_tenants",
           "counts": '{"total": 10, "processed": 10, "updated": 3, "skipped": 7, "failed": 0, "tenants": 2}',
           "count": count}).all()
    db.session.commit()
    return sorted(ids)


def listed_ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="run-(\d+)">', body)]


def test_runs_list_filters(client, world, other_world):
    plain = insert_runs(world, 3)
    sla = insert_runs(world, 2, runbook="incidents.sla.recompute", outcome="partially_succeeded",
                      source="system_ui", tenant=world.tenant_a)
    running = insert_runs(world, 1, status="running", outcome="pending", source="deploy_hook")
    elsewhere = insert_runs(other_world, 2)
    sign_in_operator(client)
    w = world.workspace.id

    def ids(query: str) -> list[int]:
        response = client.get(f"/system/runs?{query}")
        assert response.status_code == 200, (query, response.get_data(as_text=True)[:500])
        return listed_ids(response.get_data(as_text=True))

    mine = sorted(plain + sla + running, reverse=True)
    assert ids(f"workspace={w}") == mine
    assert ids(f"workspace={other_world.workspace.id}") == sorted(elsewhere, reverse=True)
    assert ids(f"workspace={w}&runbook=incidents.sla.recompute") == sorted(sla, reverse=True)
    assert ids(f"workspace={w}&status=running") == running
    assert ids(f"workspace={w}&status=completed") == sorted(plain + sla, reverse=True)
    assert ids(f"workspace={w}&outcome=partially_succeeded") == sorted(sla, reverse=True)
    assert ids(f"workspace={w}&source=system_ui") == sorted(sla, reverse=True)
    assert ids(f"workspace={w}&source=deploy_hook&runbook={KEY}") == running
    assert ids(f"workspace={w}&runbook=audit.chain.verify") == []
    assert ids(f"workspace={w}&since=2000-01-01T00:00") == mine
    assert ids(f"workspace={w}&since=2999-01-01T00:00") == []
    assert "No runs match these filters." in client.get(f"/system/runs?workspace={w}&outcome=blocked") \
        .get_data(as_text=True)

    fragment = client.get(f"/system/runs?workspace={w}&source=system_ui", htmx=True)
    body = fragment.get_data(as_text=True)
    assert html_has_no_layout(body) and listed_ids(body) == sorted(sla, reverse=True)
    assert fragment.headers["HX-Push-Url"] == f"/system/runs?workspace={w}&source=system_ui"


@pytest.mark.parametrize("query", ["status=finished", "runbook=no.such.runbook", "outcome=great", "source=cron",
                                   "workspace=987654321", "workspace=abc", "since=yesterday"])
def test_runs_list_refuses_bad_filters(client, world, query):
    sign_in_operator(client)
    response = client.get(f"/system/runs?{query}")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Some filters are not valid" in body and listed_ids(body) == []
    assert client.get(f"/system/runs?{query}", htmx=True).status_code == 400


def test_runs_list_pages_by_keyset(client, world):
    created = insert_runs(world, 57)
    sign_in_operator(client)
    first = client.get(f"/system/runs?workspace={world.workspace.id}").get_data(as_text=True)
    first_ids = listed_ids(first)
    assert first_ids == sorted(created, reverse=True)[:50]
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert f"before={first_ids[-1]}" in older and f"workspace={world.workspace.id}" in older
    second = client.get(older).get_data(as_text=True)
    assert listed_ids(second) == sorted(created, reverse=True)[50:]
    assert 'rel="next"' not in second
    newer = re.search(r'rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert f"after={listed_ids(second)[0]}" in newer
    assert listed_ids(client.get(newer).get_data(as_text=True)) == first_ids


def test_runs_list_shows_a_started_run_with_its_link(client, world):
    sign_in_operator(client)
    run_id = started_run(client, world, tenant=world.tenant_a)
    body = client.get(f"/system/runs?workspace={world.workspace.id}&source=system_ui&status=queued") \
        .get_data(as_text=True)
    assert listed_ids(body) == [run_id] and f'href="/system/runs/{run_id}"' in body


def test_active_runs_are_listed_on_the_catalog(client, world):
    sign_in_operator(client)
    run_id = started_run(client, world, tenant=world.tenant_b)
    body = client.get("/system/runbooks").get_data(as_text=True)
    assert 'id="active-runs"' in body and f'href="/system/runs/{run_id}"' in body


def test_the_run_page_reads_a_constant_number_of_queries(app, client, world):
    """The page costs the same with two tenants' parts as with one (no query per part)."""
    from sqlalchemy import event

    seed_findings(world, per_tenant=20)
    sign_in_operator(client)
    single, whole = started_run(client, world, tenant=world.tenant_a), started_run(client, world)
    work_all(app)

    def queries(run_id: int) -> int:
        seen = []

        def count(*_args):
            seen.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get(f"/system/runs/{run_id}").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    # twice each, the smaller: a session profile reloaded from the database is not the page's cost
    assert min(queries(single), queries(single)) == min(queries(whole), queries(whole))

