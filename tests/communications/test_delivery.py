"""Communications are recorded on the incident and delivered by an RQ job through SMTP or a
signed webhook, with retries; tested against a real SMTP receiver and a real HTTP receiver."""

from __future__ import annotations

import hmac
import json
from hashlib import sha256

import pytest
from sqlalchemy import select

from app.communications import service as communications
from app.communications.models import Communication, CommunicationChannel
from app.extensions import db
from app.incidents import service
from jobs.worker import run_worker


def incident_for(world):
    return service.create_incident(actor=world.actor("service_desk_analyst"),
                                   data={"title": "Mail me", "severity": "p3", "tenant": world.tenant_a.slug})


def communicate(world, incident, recipients="stakeholders", message="We are on it."):
    service.perform(actor=world.actor("service_desk_analyst"), incident_id=incident.id, action="communicate",
                    data={"recipients": recipients, "message": message})
    return db.session.scalars(select(Communication).where(Communication.incident_id == incident.id,
                                                          Communication.recipients == recipients)
                              .order_by(Communication.created_at.desc())).first()


def work(app):
    run_worker(app, burst=True, simple=True, with_scheduler=False)


def test_without_a_channel_a_communication_is_recorded_only(app_ctx, world):
    incident = incident_for(world)
    communication = communicate(world, incident)
    assert communication.delivery_status == "recorded" and communication.channel_kind is None


def test_email_delivery_through_smtp(app, app_ctx, world, smtp_server):
    controller, inbox = smtp_server
    communications.save_channel(actor=world.actor("workspace_admin"), recipients="stakeholders", kind="email",
                                smtp_host="127.0.0.1", smtp_port=controller.port, from_address="ops@example.test",
                                to_addresses=["cto@example.test", "pm@example.test"])
    incident = incident_for(world)
    communication = communicate(world, incident, message="Checkout is degraded; next update at 10:00.")
    assert communication.delivery_status == "queued"
    work(app)
    db.session.expire_all()
    communication = db.session.get(Communication, communication.id)
    assert communication.delivery_status == "delivered" and communication.attempts == 1
    (recipients, message), = inbox.messages
    assert recipients == ["cto@example.test", "pm@example.test"]
    assert incident.reference in message["Subject"] and "next update at 10:00" in message.get_payload()


def test_webhook_delivery_is_signed(app, app_ctx, world, http_receiver):
    url, received, _ = http_receiver
    channel = communications.save_channel(actor=world.actor("workspace_admin"), recipients="executives",
                                          kind="webhook", webhook_url=url)
    incident = incident_for(world)
    communication = communicate(world, incident, recipients="executives", message="Board-level update.")
    work(app)
    (headers, body), = [r for r in received if json.loads(r[1])["communication_id"] == str(communication.id)]
    assert headers["X-Opsdesk-Signature"] == "sha256=" + hmac.new(channel.signing_secret.encode(), body,
                                                                  sha256).hexdigest()
    payload = json.loads(body)
    assert payload["message"] == "Board-level update." and payload["incident_id"] == str(incident.id)
    db.session.expire_all()
    assert db.session.get(Communication, communication.id).delivery_status == "delivered"


def test_a_failed_delivery_is_retried_with_back_off_then_marked_failed(app, app_ctx, world, http_receiver):
    url, received, answers = http_receiver
    answers.extend([500, 503])
    communications.save_channel(actor=world.actor("workspace_admin"), recipients="IT_staff", kind="webhook",
                                webhook_url=url)
    incident = incident_for(world)
    communication = communicate(world, incident, recipients="IT_staff")
    work(app)
    db.session.expire_all()
    row = db.session.get(Communication, communication.id)
    assert row.delivery_status == "retrying" and row.attempts == 1 and "HTTP 500" in row.last_error
    from jobs.queues import get_queue

    assert get_queue("notifications").scheduled_job_registry.count >= 1  # the retry waits its back-off
    assert communications.deliver(communication.id, final_attempt=True) == "failed"
    db.session.expire_all()
    row = db.session.get(Communication, communication.id)
    assert row.delivery_status == "failed" and row.attempts == 2 and "HTTP 503" in row.last_error


def test_delivery_is_idempotent(app, app_ctx, world, http_receiver):
    url, received, _ = http_receiver
    communications.save_channel(actor=world.actor("workspace_admin"), recipients="end_users", kind="webhook",
                                webhook_url=url)
    communication = communicate(world, incident_for(world), recipients="end_users")
    work(app)
    assert communications.deliver(communication.id, final_attempt=False) == "delivered"
    mine = [body for _, body in received if json.loads(body)["communication_id"] == str(communication.id)]
    assert len(mine) == 1


def test_the_incident_page_shows_the_delivery_state(client, world, http_receiver):
    url, _, answers = http_receiver
    answers.append(500)
    communications.save_channel(actor=world.actor("workspace_admin"), recipients="stakeholders", kind="webhook",
                                webhook_url=url)
    incident = incident_for(world)
    communication = communicate(world, incident)
    with pytest.raises(communications.DeliveryError):
        communications.deliver(communication.id, final_attempt=False)
    client.login(world.email("service_desk_analyst"))
    body = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "delivery-retrying" in body and "HTTP 500" in body


def test_bad_channel_settings_are_refused(app_ctx, world):
    from app.errors import NotAllowed, ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        communications.save_channel(actor=world.actor("workspace_admin"), recipients="stakeholders", kind="email",
                                    smtp_host="", from_address="nope", to_addresses=["x"])
    assert set(refused.value.fields) == {"smtp_host", "from_address", "to_addresses"}
    with pytest.raises(NotAllowed):
        communications.save_channel(actor=world.actor("incident_manager"), recipients="stakeholders",
                                    kind="webhook", webhook_url="https://x.test")
    db.session.rollback()
    assert db.session.scalar(select(CommunicationChannel).where(
        CommunicationChannel.workspace_id == world.workspace.id)) is None


def test_channels_page_for_admins(client, world):
    client.login(world.email("workspace_admin"))
    assert client.get("/workspace/channels").status_code == 200
    response = client.post("/workspace/channels", {"recipients": "stakeholders", "kind": "webhook",
                                                   "webhook_url": "ftp://nope"})
    assert response.status_code == 422 and "an http(s) URL" in response.get_data(as_text=True)
    ok = client.post("/workspace/channels", {"recipients": "stakeholders", "kind": "webhook",
                                             "webhook_url": "https://hooks.example.test/ops"})
    assert ok.status_code == 303


def test_stalled_communications_are_queued_again(app, app_ctx, world, http_receiver):
    url, received, _ = http_receiver
    communications.save_channel(actor=world.actor("workspace_admin"), recipients="stakeholders", kind="webhook",
                                webhook_url=url)
    communication = communicate(world, incident_for(world))
    db.session.execute(Communication.__table__.update().where(Communication.id == communication.id)
                       .values(created_at=db.func.now() - db.text("interval '1 hour'")))
    db.session.commit()
    from jobs.communications import requeue_stalled
    from jobs.queues import get_queue

    get_queue("notifications").empty()
    assert requeue_stalled() >= 1
    work(app)
    assert any(json.loads(body)["communication_id"] == str(communication.id) for _, body in received)
