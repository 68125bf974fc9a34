"""Tenant isolation on every route: each endpoint is listed here with how it is checked.

A new route fails `test_every_route_is_covered` until it is added to ISOLATION with a check
(or the reason it holds no tenant data).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit import service as audit
from app.extensions import db
from app.workspaces.models import Membership
from tests import isolation_checks as checks


def _other_member(other_world) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.workspace_id == other_world.workspace.id))


def check_home(client, world, other_world):
    body = client.get("/").get_data(as_text=True)
    assert other_world.tenant_a.name not in body and other_world.workspace.name not in body


def check_switch(client, world, other_world):
    assert client.post("/switch", {"workspace_id": other_world.workspace.id}).status_code == 404
    response = client.post("/switch", {"workspace_id": world.workspace.id, "tenant_id": other_world.tenant_a.id})
    assert response.status_code == 404


def check_members(client, world, other_world):
    body = client.get("/workspace/members").get_data(as_text=True)
    assert other_world.email("auditor") not in body and world.email("auditor") in body


def check_add_member(client, world, other_world):
    response = client.post("/workspace/members", {"email": "new-person@example.test", "name": "New Person",
                                                  "password": "long enough password", "role": "resolver",
                                                  "tenant_ids": other_world.tenant_a.id})
    assert response.status_code == 422
    assert "Only tenants of this workspace" in response.get_data(as_text=True)


def check_change_member(client, world, other_world):
    target = _other_member(other_world)
    response = client.post(f"/workspace/members/{target.id}", {"role": "auditor"})
    assert response.status_code == 404


def check_remove_member(client, world, other_world):
    target = _other_member(other_world)
    assert client.post(f"/workspace/members/{target.id}/remove").status_code == 404
    assert db.session.get(Membership, target.id) is not None


def check_tenants(client, world, other_world):
    body = client.get("/workspace/tenants").get_data(as_text=True)
    assert other_world.tenant_a.slug not in body and world.tenant_a.slug in body


def _other_event(other_world):
    audit.record(actor=other_world.actor(), action="update", ref_type="membership", ref_id="elsewhere-ref",
                 tenant_id=other_world.tenant_a.id, field_deltas={"role": ["auditor", "workspace_admin"]})
    db.session.commit()


def check_audit(path):
    def check(client, world, other_world):
        _other_event(other_world)
        assert "elsewhere-ref" not in client.get(path).get_data(as_text=True)
        refused = client.get(f"{path}?tenant={other_world.tenant_a.id}")
        assert refused.status_code == 400 and "elsewhere-ref" not in refused.get_data(as_text=True)

    return check


def console_user_is_kept_out(path, method="get"):
    def check(client, world, other_world):
        response = getattr(client, method)(path)
        assert response.status_code in (303, 400) and "elsewhere" not in response.get_data(as_text=True)
        if response.status_code == 303:
            assert response.headers["Location"].startswith("/system/login")

    return check


NO_TENANT_DATA = "no tenant data"
ISOLATION = {
    "console.home": check_home,
    "console.switch": check_switch,
    "workspaces.members": check_members,
    "workspaces.add_member": check_add_member,
    "workspaces.change_member": check_change_member,
    "workspaces.remove_member": check_remove_member,
    "workspaces.tenants": check_tenants,
    "audit.index": check_audit("/audit"),
    "audit.privileged": check_audit("/audit/privileged"),
    "audit.export": check_audit("/audit/export.csv"),
    "system.home": console_user_is_kept_out("/system/"),
    "system.audit": console_user_is_kept_out("/system/audit"),
    "system.audit_privileged": console_user_is_kept_out("/system/audit/privileged"),
    "system.audit_export": console_user_is_kept_out("/system/audit/export.csv"),
    "system.start_break_glass": console_user_is_kept_out("/system/break-glass", "post"),
    "system.end_break_glass": console_user_is_kept_out("/system/break-glass/end", "post"),
    "system.deliveries": console_user_is_kept_out("/system/deliveries"),
    "system.retry_delivery": console_user_is_kept_out("/system/deliveries/1/retry", "post"),
    "system.health": console_user_is_kept_out("/system/health"),
    "system.queues": console_user_is_kept_out("/system/queues"),
    "system.retry_failed_job": console_user_is_kept_out("/system/queues/default/failed/some-job/retry", "post"),
    "system.retry_all_failed_jobs": console_user_is_kept_out("/system/queues/default/failed/retry-all", "post"),
    "system.delete_failed_job": console_user_is_kept_out("/system/queues/default/failed/some-job/delete", "post"),
    "system.runbooks": console_user_is_kept_out("/system/runbooks"),
    "system.preflight": console_user_is_kept_out("/system/runbooks/findings.lifecycle.backfill/preflight", "post"),
    "system.start": console_user_is_kept_out("/system/runbooks/findings.lifecycle.backfill/start", "post"),
    "system.run": console_user_is_kept_out("/system/runs/1"),
    "system.cancel_run": console_user_is_kept_out("/system/runs/1/cancel", "post"),
    "system.runs": console_user_is_kept_out("/system/runs"),
    "system.login": "platform sign-in form; covered in tests/system",
    "system.logout": "ends only the caller's own session",
    "auth.login": NO_TENANT_DATA,
    "auth.logout": "ends only the caller's own session",
    "health.healthz": NO_TENANT_DATA,
    "health.readyz": NO_TENANT_DATA,
    "prometheus_metrics": "aggregate counters only; tenant-free by design",
    "static": NO_TENANT_DATA,
    "api.create_token": "issues a token only for the caller's own membership (tests/api)",
    "api.revoke_current_token": "revokes only the presented token (tests/api)",
    "api.openapi": NO_TENANT_DATA,
    "incidents.board": checks.check_board,
    "incidents.new": "a blank form; its tenant list is the caller's own (see incidents.create)",
    "incidents.create": checks.check_create,
    "incidents.detail": checks.check_incident_page(""),
    "incidents.act": checks.check_incident_page("/actions/acknowledge", "post"),
    "incidents.save_review": checks.check_incident_page("/review", "post", {"summary": "x" * 30}),
    "incidents.sign_off_review": checks.check_incident_page("/review/sign-off", "post"),
    "incidents.add_action_item": checks.check_incident_page("/review/items", "post",
                                                            {"description": "x", "owner": "y", "due_date": "2030-01-01"}),
    "incidents.sla_report": checks.check_sla_report,
    "changes.index": checks.check_changes,
    "changes.create": checks.check_change_create,
    "changes.decide": checks.check_change_decide,
    "reviews.index": checks.check_reviews,
    "reviews.set_item_status": checks.check_review_item,
    "alerts.index": checks.check_alerts,
    "alerts.count": checks.check_alerts,
    "alerts.mark_read": checks.check_alert_read,
    "workspaces.channels": checks.check_channels,
    "workspaces.alert_rules": checks.check_alert_rules,
    "workspaces.delete_alert_rule": checks.check_alert_rule_delete,
    "api.list_incidents": checks.check_api_list,
    "api.get_incident": checks.check_api_get,
    "api.run_action": checks.check_api_action,
    "api.create_incident": checks.check_api_create,
}


def test_every_route_is_covered(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(ISOLATION) == set(), "add the new routes to ISOLATION with a check"
    assert set(ISOLATION) - endpoints == set(), "ISOLATION lists routes that no longer exist"


@pytest.mark.parametrize("endpoint", sorted(k for k, v in ISOLATION.items() if callable(v)))
def test_isolation(endpoint, client, world, other_world):
    check = ISOLATION[endpoint]
    client.login(world.email(getattr(check, "role", "workspace_admin")))
    check(client, world, other_world)
