"""Isolation checks for the incident, change, review and alert routes (used by test_isolation)."""

from __future__ import annotations

from sqlalchemy import select

from app.alerts import service as alerts
from app.changes import service as changes
from app.extensions import db
from app.incidents import service as incidents


def foreign_incident(other_world):
    return incidents.create_incident(actor=other_world.actor("service_desk_analyst"), data={
        "title": "Elsewhere outage", "severity": "p2", "tenant": other_world.tenant_a.slug})


def check_board(client, world, other_world):
    foreign_incident(other_world)
    body = client.get("/incidents?status=all").get_data(as_text=True)
    assert "Elsewhere outage" not in body
    assert client.get(f"/incidents?tenant={other_world.tenant_a.id}").status_code == 400


def as_role(role: str):
    """Run a check signed in as a role that may use the route (isolation, not permission, is tested)."""
    def mark(check):
        check.role = role
        return check

    return mark


def check_incident_page(path_suffix: str, method: str = "get", data: dict | None = None):
    @as_role("incident_manager")
    def check(client, world, other_world):
        incident = foreign_incident(other_world)
        path = f"/incidents/{incident.id}{path_suffix}"
        response = client.get(path) if method == "get" else client.post(path, data or {})
        assert response.status_code == 404, (path, response.status_code)
        assert "Elsewhere outage" not in response.get_data(as_text=True)

    return check


@as_role("service_desk_analyst")
def check_create(client, world, other_world):
    response = client.post("/incidents", {"title": "Sneaky", "severity": "p3", "tenant": other_world.tenant_a.id})
    assert response.status_code == 422 and "unknown tenant" in response.get_data(as_text=True)


def check_sla_report(client, world, other_world):
    incident = foreign_incident(other_world)
    db.session.execute(incident.__table__.update().where(incident.__table__.c.id == incident.id)
                       .values(breached_at=db.func.now(), resolve_breached=True))
    db.session.commit()
    assert "Elsewhere outage" not in client.get("/incidents/sla-breaches").get_data(as_text=True)
    assert "Elsewhere" not in client.get("/incidents/sla-breaches?format=csv").get_data(as_text=True)


def _foreign_change(other_world):
    return changes.create_change(actor=other_world.actor("resolver"), tenant=other_world.tenant_a.slug,
                                 summary="Elsewhere change", risk="low")


def check_changes(client, world, other_world):
    _foreign_change(other_world)
    assert "Elsewhere change" not in client.get("/changes").get_data(as_text=True)


@as_role("resolver")
def check_change_create(client, world, other_world):
    response = client.post("/changes", {"summary": "Sneaky change", "risk": "low", "tenant": other_world.tenant_a.id})
    assert response.status_code == 422


@as_role("change_manager")
def check_change_decide(client, world, other_world):
    change = _foreign_change(other_world)
    assert client.post(f"/changes/{change.id}/decision", {"decision": "approve"}).status_code == 404


@as_role("incident_manager")
def check_reviews(client, world, other_world):
    assert "Elsewhere" not in client.get("/reviews").get_data(as_text=True)


@as_role("incident_manager")
def check_review_item(client, world, other_world):
    from app.reviews.models import PirActionItem

    incident = foreign_incident(other_world)
    manager = other_world.actor("incident_manager")
    for action, data in (("acknowledge", {}), ("resolve", {"summary": "fixed"})):
        incidents.perform(actor=other_world.actor("service_desk_analyst"), incident_id=incident.id, action=action,
                          data=data)
    from datetime import date

    from app.reviews import service as reviews

    reviews.save_review(actor=manager, incident_id=incident.id, summary="A review written elsewhere, long enough.")
    reviews.add_action_item(actor=manager, incident_id=incident.id, description="x", owner="y", due_date=date.today())
    item = db.session.scalar(select(PirActionItem).where(PirActionItem.incident_id == incident.id))
    assert client.post(f"/reviews/items/{item.id}/status", {"status": "done"}).status_code == 404


def _foreign_alert(other_world):
    alert_id = alerts.raise_alert(workspace_id=other_world.workspace.id, tenant_id=other_world.tenant_a.id,
                                  audience_role="workspace_admin", kind="test", message="Elsewhere alert")
    db.session.commit()
    return alert_id


def check_alerts(client, world, other_world):
    _foreign_alert(other_world)
    assert "Elsewhere alert" not in client.get("/alerts").get_data(as_text=True)
    assert client.get("/alerts/count").get_data(as_text=True) in ("", "0")


def check_alert_read(client, world, other_world):
    alert_id = _foreign_alert(other_world)
    assert client.post("/alerts/read", {"alert_id": alert_id}).status_code == 404


def check_channels(client, world, other_world):
    from app.communications.models import CommunicationChannel

    db.session.add(CommunicationChannel(workspace_id=other_world.workspace.id, recipients="executives",
                                        kind="webhook", webhook_url="https://elsewhere.example/hook"))
    db.session.commit()
    assert "elsewhere.example" not in client.get("/workspace/channels").get_data(as_text=True)


def _token(client, world) -> str:
    from tests.factories import PASSWORD

    return client.raw.post("/api/v1/auth/tokens", json={"email": world.email("workspace_admin"),
                                                        "password": PASSWORD}).get_json()["access_token"]


def check_api_list(client, world, other_world):
    foreign_incident(other_world)
    token = _token(client, world)
    body = client.raw.get("/api/v1/incidents?status=active", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert all(item["title"] != "Elsewhere outage" for item in body["items"])
    assert client.raw.get(f"/api/v1/incidents?tenant={other_world.tenant_a.slug}",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 422


def check_api_get(client, world, other_world):
    incident = foreign_incident(other_world)
    token = _token(client, world)
    response = client.raw.get(f"/api/v1/incidents/{incident.id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def check_api_action(client, world, other_world):
    incident = foreign_incident(other_world)
    token = _token(client, world)
    response = client.raw.post(f"/api/v1/incidents/{incident.id}/actions/acknowledge", json={},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


def check_api_create(client, world, other_world):
    token = _token(client, world)
    response = client.raw.post("/api/v1/incidents", json={"title": "x", "severity": "p3",
                                                          "tenant": other_world.tenant_a.slug},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and response.get_json()["error"]["fields"] == {"tenant": "unknown tenant"}


def _foreign_alert_rule(other_world):
    from app.runbooks.models import AlertRule

    rule = AlertRule(workspace_id=other_world.workspace.id, event_type="operations.run.failed", channel="webhook",
                     webhook_url="https://elsewhere.example/alerts", signing_secret="elsewhere-secret")
    db.session.add(rule)
    db.session.commit()
    return rule.id


def check_alert_rules(client, world, other_world):
    _foreign_alert_rule(other_world)
    body = client.get("/workspace/alert-rules").get_data(as_text=True)
    assert "elsewhere.example" not in body and "elsewhere-secret" not in body


def check_alert_rule_delete(client, world, other_world):
    from app.runbooks.models import AlertRule

    rule_id = _foreign_alert_rule(other_world)
    assert client.post(f"/workspace/alert-rules/{rule_id}/delete").status_code == 404
    db.session.expire_all()
    assert db.session.get(AlertRule, rule_id) is not None
