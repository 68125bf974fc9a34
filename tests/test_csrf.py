"""CSRF on every unsafe browser request, HTMX ones included: refused with 400, nothing written."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.workspaces.models import Membership
from tests.factories import make_platform_user

TABLES = ["audit_events", "memberships", "membership_tenants", "tenants", "users", "platform_users",
          "login_sessions", "break_glass_grants", "service_accounts", "workspaces", "incidents", "incident_timeline",
          "change_requests", "post_incident_reviews", "pir_action_items", "communications", "alert_reads",
          "communication_channels", "alert_rules", "alert_deliveries", "operation_runs", "operation_run_parts",
          "findings", "monitoring_events"]


def snapshot() -> dict[str, str]:
    db.session.rollback()
    return {table: db.session.scalar(text(
        f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t")) for table in TABLES}


def unsafe_browser_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") or rule.endpoint == "static":
            continue
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            yield rule, method


def test_the_sweep_covers_the_unsafe_routes(app):
    endpoints = {rule.endpoint for rule, _ in unsafe_browser_rules(app)}
    assert {"auth.login", "auth.logout", "console.switch", "workspaces.add_member", "workspaces.change_member",
            "workspaces.remove_member", "workspaces.tenants", "system.start_break_glass",
            "system.end_break_glass", "system.login", "system.logout", "incidents.create", "incidents.act",
            "incidents.save_review", "changes.decide", "alerts.mark_read", "workspaces.channels",
            "workspaces.alert_rules", "workspaces.delete_alert_rule", "system.retry_delivery",
            "system.retry_failed_job", "system.retry_all_failed_jobs", "system.delete_failed_job",
            "system.preflight", "system.start", "system.cancel_run"} <= endpoints


@pytest.mark.parametrize("htmx", [False, True])
def test_every_unsafe_route_refuses_a_request_without_token(app, client, make_client, world, htmx):
    operator = make_platform_user()
    member = db.session.scalar(select(Membership).where(Membership.user_id == world.users["auditor"].id))
    client.login(world.email("workspace_admin"))
    system_client = make_client()
    system_client.login_system(operator.email)
    # the token is checked before the view runs, so made-up ids are as good as real ones
    values = {"membership_id": member.id, "incident_id": uuid.uuid4(), "action": "acknowledge",
              "change_id": uuid.uuid4(), "item_id": uuid.uuid4(), "rule_id": 1, "delivery_id": 1,
              "queue": "default", "job_id": "no-such-job", "key": "findings.lifecycle.backfill", "run_id": 1}
    for rule, method in unsafe_browser_rules(app):
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule.rule)
        who = system_client if rule.endpoint.startswith("system.") else client
        before = snapshot()
        headers = {"HX-Request": "true"} if htmx else {}
        response = who.raw.open(path, method=method, headers=headers,
                                data={"role": "workspace_admin", "workspace_id": world.workspace.id,
                                      "email": "x@example.test", "password": "long enough pass", "name": "X",
                                      "slug": "csrf-tenant", "reason": "a reason that is long enough"})
        assert response.status_code == 400, f"{method} {path} answered {response.status_code}"
        assert "did not come from Opsdesk" in response.get_data(as_text=True) or "expired" in \
            response.get_data(as_text=True)
        assert snapshot() == before, f"{method} {path} wrote something without a CSRF token"
    # both sessions are still alive: even sign-out needs the token
    assert client.get("/").status_code == 200
    assert system_client.get("/system/").status_code == 200


def test_htmx_request_with_the_token_header_is_accepted(client, world):
    client.login(world.email("workspace_admin"))
    response = client.post("/switch", {"workspace_id": world.workspace.id, "tenant_id": world.tenant_b.id},
                           htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"]
    assert world.tenant_b.name in client.get("/").get_data(as_text=True)


def _page_token(client, path: str) -> str:
    match = re.search(r'"X-CSRFToken": "([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def test_a_session_keeps_one_token_and_a_new_sign_in_gets_another(client, world):
    client.login(world.email("workspace_admin"))
    token = _page_token(client, "/")
    assert _page_token(client, "/audit") == token == _page_token(client, "/incidents")
    response = client.post("/switch", {"workspace_id": world.workspace.id, "tenant_id": world.tenant_b.id,
                                       "csrf_token": token}, csrf=False)
    assert response.status_code == 303
    client.logout()
    client.login(world.email("workspace_admin"))
    assert _page_token(client, "/") != token
    before = snapshot()
    response = client.post("/switch", {"workspace_id": world.workspace.id, "tenant_id": world.tenant_a.id,
                                       "csrf_token": token}, csrf=False)
    assert response.status_code == 400 and snapshot() == before
