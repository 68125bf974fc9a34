"""Changes, Reviews and Alerts pages; the SLA scan on a real worker; incident metrics."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select

from app.alerts.models import Alert
from app.changes import service as changes
from app.changes.models import ChangeRequest
from app.extensions import db
from app.incidents import service
from app.incidents.models import Incident
from app.reviews import service as reviews
from app.reviews.models import PirActionItem


def resolved_p1(world, title="Reviewed outage"):
    incident = service.create_incident(actor=world.actor("service_desk_analyst"), data={
        "title": title, "severity": "p1", "tenant": world.tenant_a.slug})
    for action, data in (("acknowledge", {}), ("resolve", {"summary": "Rolled back."})):
        service.perform(actor=world.actor("service_desk_analyst"), incident_id=incident.id, action=action, data=data)
    return incident


def test_changes_page_raise_and_decide_with_segregation_of_duties(client, make_client, world):
    client.login(world.email("resolver"))
    response = client.post("/changes", {"summary": "Rotate keys", "risk": "medium", "tenant": world.tenant_a.id,
                                        "rollback_plan": "Restore old keys"})
    assert response.status_code == 303
    change = db.session.scalar(select(ChangeRequest).where(ChangeRequest.summary == "Rotate keys"))
    assert change.approval_status == "pending" and change.reference.startswith("CHG-")
    assert client.post(f"/changes/{change.id}/decision", {"decision": "approve"}).status_code == 403
    manager = make_client()
    manager.login(world.email("change_manager"))
    assert "Rotate keys" in manager.get("/changes?approval=pending").get_data(as_text=True)
    assert manager.post(f"/changes/{change.id}/decision", {"decision": "approve", "note": "CAB ok"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(ChangeRequest, change.id).approval_status == "approved"
    again = manager.post(f"/changes/{change.id}/decision", {"decision": "reject"})
    assert again.status_code == 409


def test_a_change_manager_cannot_approve_their_own_change(app_ctx, world):
    import pytest

    from app.errors import NotAllowed

    own = changes.create_change(actor=world.actor("change_manager"), tenant=world.tenant_a.slug, summary="Mine",
                                risk="low")
    with pytest.raises(NotAllowed, match="Segregation of duties"):
        changes.decide(actor=world.actor("change_manager"), change_id=own.id, approve=True)


def test_change_form_errors_are_shown(client, world):
    client.login(world.email("resolver"))
    response = client.post("/changes", {"summary": "", "risk": "extreme"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "between 1 and 500 characters" in body and "low, medium or high" in body


def test_reviews_page_lists_reviews_and_open_action_items(client, world):
    incident = resolved_p1(world)
    manager = world.actor("incident_manager")
    reviews.save_review(actor=manager, incident_id=incident.id, summary="The cache expired everything at once.")
    reviews.add_action_item(actor=manager, incident_id=incident.id, description="Jitter the cache TTL",
                            owner="resolver-team", due_date=date.today() - timedelta(days=1))
    client.login(world.email("incident_manager"))
    body = client.get("/reviews").get_data(as_text=True)
    assert "Jitter the cache TTL" in body and "The cache expired" in body
    assert "Jitter" in client.get("/reviews?overdue=1").get_data(as_text=True)
    assert "Jitter" not in client.get("/reviews?owner=someone-else").get_data(as_text=True)
    item = db.session.scalar(select(PirActionItem).where(PirActionItem.incident_id == incident.id))
    assert client.post(f"/reviews/items/{item.id}/status", {"status": "done"}).status_code == 303
    assert "Jitter" not in client.get("/reviews").get_data(as_text=True)  # done items leave the open list


def test_reviews_are_for_managers(client, world):
    client.login(world.email("service_desk_analyst"))
    assert client.get("/reviews").status_code == 403


def test_pir_on_the_incident_page_then_close(client, world):
    incident = resolved_p1(world, "Page reviewed")
    client.login(world.email("incident_manager"))
    too_short = client.post(f"/incidents/{incident.id}/review", {"summary": "short"}, htmx=True)
    assert too_short.status_code == 422 and 'id="form-review"' in too_short.get_data(as_text=True)
    assert client.post(f"/incidents/{incident.id}/review", {
        "summary": "Database failover took too long.", "contributing_factors": "Stale DNS TTL"}).status_code == 303
    assert client.post(f"/incidents/{incident.id}/review/items", {
        "description": "Lower DNS TTL", "owner": "devops", "due_date": "2030-01-31"}).status_code == 303
    assert client.post(f"/incidents/{incident.id}/review/sign-off").status_code == 303
    assert client.post(f"/incidents/{incident.id}/actions/close", {"notes": "All good"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).status == "closed"
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "signed off by" in page and "Lower DNS TTL" in page


def test_sla_scan_runs_on_the_worker_and_alerts_the_incident_managers(app, client, world):
    from jobs.incidents import scan_sla_breaches
    from jobs.queues import enqueue
    from jobs.worker import run_worker

    incident = service.create_incident(actor=world.actor("service_desk_analyst"), data={
        "title": "Nobody picked this up", "severity": "p2", "tenant": world.tenant_a.slug})
    db.session.execute(Incident.__table__.update().where(Incident.id == incident.id).values(
        acknowledge_due_at=db.func.now() - db.text("interval '5 minutes'")))
    db.session.commit()
    enqueue("urgent", scan_sla_breaches)
    enqueue("urgent", scan_sla_breaches)  # a second worker's run finds nothing new
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    db.session.expire_all()
    row = db.session.get(Incident, incident.id)
    assert row.acknowledge_breached and row.status == "open" and row.assigned_team == "incident_manager"
    alerts = db.session.scalars(select(Alert).where(Alert.workspace_id == world.workspace.id)).all()
    assert len(alerts) == 1 and alerts[0].audience_role == "incident_manager"
    client.login(world.email("incident_manager"))
    assert client.get("/alerts/count").get_data(as_text=True) == "1"
    assert "Nobody picked this up" in client.get("/alerts").get_data(as_text=True)
    assert client.post("/alerts/read").status_code == 303
    assert client.get("/alerts/count").get_data(as_text=True) == ""
    client.logout()
    client.login(world.email("service_desk_analyst"))
    assert client.get("/alerts/count").get_data(as_text=True) == ""  # addressed to incident managers


def test_incident_metrics_read_the_database(client, world):
    def sample(text: str, name: str, **labels) -> float:
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        match = re.search(rf"^{name}\{{{label_text}\}} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    before = client.get("/metrics").get_data(as_text=True)
    incident = service.create_incident(actor=world.actor("service_desk_analyst"), data={
        "title": "Metric me", "severity": "p4", "tenant": world.tenant_a.slug})
    service.start_simulation(actor=world.actor("incident_manager"), data={
        "title": "Drill", "severity": "p4", "tenant": world.tenant_a.slug, "scenario": "DB down", "scope": "EU"})
    after = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE mlplatform_incidents_total counter" in after and "# TYPE mlplatform_incidents_open gauge" in after
    assert sample(after, "mlplatform_incidents_total", severity="p4", trigger_source="manual") == \
        sample(before, "mlplatform_incidents_total", severity="p4", trigger_source="manual") + 1  # drills excluded
    assert sample(after, "mlplatform_incidents_open", severity="p4") == \
        sample(before, "mlplatform_incidents_open", severity="p4") + 1
    service.perform(actor=world.actor("service_desk_analyst"), incident_id=incident.id, action="acknowledge", data={})
    service.perform(actor=world.actor("service_desk_analyst"), incident_id=incident.id, action="resolve",
                    data={"summary": "ok"})
    resolved = client.get("/metrics").get_data(as_text=True)
    assert sample(resolved, "mlplatform_incidents_open", severity="p4") == \
        sample(before, "mlplatform_incidents_open", severity="p4")


def test_drills_are_flagged(client, world):
    client.login(world.email("incident_manager"))
    response = client.post("/incidents", {"simulation": "1", "title": "Tabletop: region loss", "severity": "p1",
                                          "tenant": world.tenant_a.id, "scenario": "EU region down",
                                          "scope": "Checkout"})
    assert response.status_code == 303
    drill = db.session.scalar(select(Incident).where(Incident.title == "Tabletop: region loss"))
    assert drill.is_simulation and drill.simulation == {"scenario": "EU region down", "scope": "Checkout"}
    assert "drill" in client.get("/incidents").get_data(as_text=True)
    client.logout()
    client.login(world.email("service_desk_analyst"))
    refused = client.post("/incidents", {"simulation": "1", "title": "Not mine", "severity": "p3",
                                         "tenant": world.tenant_a.id, "scenario": "x", "scope": "y"})
    assert refused.status_code == 403
