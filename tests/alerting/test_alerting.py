"""Alert rules and deliveries: `dispatch` records one delivery per rule in the caller's transaction,
an RQ worker delivers it (in-app, SMTP, signed webhook) with retries; workspace admins manage the
rules; platform operators watch and retry deliveries on /system/deliveries."""

from __future__ import annotations

import hmac
import json
import re
from hashlib import sha256

import pytest
from sqlalchemy import event, func, select

from app.alerting import service as alerting
from app.alerts.models import Alert
from app.audit.models import AuditEvent
from app.delivery import DeliveryError
from app.errors import InvalidTransition, NotAllowed, ValidationFailed
from app.extensions import db
from app.runbooks.models import AlertDelivery, AlertRule
from jobs.alerting import deliver_alert, requeue_stalled_alerts
from jobs.queues import enqueue, get_queue
from jobs.worker import run_worker
from tests.conftest import html_has_no_layout
from tests.factories import make_platform_user
from tests.services import free_port

EVENT = "operations.run.failed"


def work(app):
    run_worker(app, burst=True, simple=True, with_scheduler=False)


def dispatch(world, message="Runbook findings.lifecycle.backfill failed for Acme", tenant_id=None) -> list[int]:
    ids = alerting.dispatch(workspace_id=world.workspace.id, tenant_id=tenant_id, event_type=EVENT, message=message,
                            link="/system/runs/41", metadata={"run_id": 41, "run_type": "findings.lifecycle.backfill",
                                                              "scope": "all_tenants"})
    db.session.commit()
    return ids


def delivery(delivery_id) -> AlertDelivery:
    db.session.expire_all()
    return db.session.get(AlertDelivery, delivery_id)


def rule(world, channel, **fields) -> AlertRule:
    return alerting.save_rule(actor=world.actor("workspace_admin"), event_type=EVENT, channel=channel, **fields)


# -- dispatch and delivery through a real worker --------------------------------------------------------

def test_an_in_app_rule_raises_an_alert_for_its_role(app, client, world):
    rule(world, "in_app", audience_role="incident_manager")
    (delivery_id,) = dispatch(world, message="Runbook incidents.sla.recompute failed")
    assert delivery(delivery_id).status == "queued"
    work(app)
    row = delivery(delivery_id)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    alert = db.session.scalar(select(Alert).where(Alert.dedupe_key == f"delivery:{delivery_id}"))
    assert alert.audience_role == "incident_manager" and alert.kind == EVENT and alert.link == "/system/runs/41"
    client.login(world.email("incident_manager"))
    assert "Runbook incidents.sla.recompute failed" in client.get("/alerts").get_data(as_text=True)


def test_nothing_is_recorded_or_queued_when_the_caller_rolls_back(app_ctx, world):
    rule(world, "in_app", audience_role="workspace_admin")
    queue = get_queue("notifications")
    before = queue.count
    alerting.dispatch(workspace_id=world.workspace.id, tenant_id=None, event_type=EVENT, message="never")
    db.session.rollback()
    assert queue.count == before
    assert db.session.scalar(select(func.count()).select_from(AlertDelivery)
                             .where(AlertDelivery.workspace_id == world.workspace.id)) == 0


def test_an_email_rule_sends_through_smtp(app, app_ctx, world, smtp_server):
    controller, inbox = smtp_server
    rule(world, "email", smtp_host="127.0.0.1", smtp_port=controller.port, from_address="opsdesk@example.test",
         to_addresses=["oncall@example.test", "lead@example.test"])
    (delivery_id,) = dispatch(world, tenant_id=world.tenant_a.id)
    work(app)
    assert delivery(delivery_id).status == "delivered"
    (recipients, message), = inbox.messages
    assert recipients == ["oncall@example.test", "lead@example.test"]
    subject = " ".join(str(message["Subject"]).split())  # a long header is folded on the wire
    assert subject == "[Opsdesk] A runbook run failed: Runbook findings.lifecycle.backfill failed for Acme"
    body = message.get_payload()
    assert "Link: /system/runs/41" in body and "run_id: 41" in body and f"delivery {delivery_id}" in body


def test_a_webhook_rule_posts_signed_json(app, app_ctx, world, http_receiver):
    url, received, _ = http_receiver
    saved = rule(world, "webhook", webhook_url=url)
    (delivery_id,) = dispatch(world, tenant_id=world.tenant_b.id)
    work(app)
    (headers, body), = [r for r in received if r[0].get("X-Opsdesk-Delivery") == str(delivery_id)]
    assert headers["X-Opsdesk-Signature"] == "sha256=" + hmac.new(saved.signing_secret.encode(), body,
                                                                  sha256).hexdigest()
    assert headers["X-Opsdesk-Event"] == EVENT and headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["event"] == EVENT and payload["delivery_id"] == delivery_id
    assert payload["tenant_id"] == world.tenant_b.id and payload["workspace_id"] == world.workspace.id
    assert payload["metadata"] == {"run_id": 41, "run_type": "findings.lifecycle.backfill", "scope": "all_tenants"}
    assert payload["link"] == "/system/runs/41" and payload["occurred_at"]
    assert delivery(delivery_id).status == "delivered"


def test_each_enabled_rule_gets_its_own_delivery(app_ctx, world, other_world, http_receiver):
    url, _, _ = http_receiver
    rule(world, "in_app", audience_role="incident_manager")
    rule(world, "webhook", webhook_url=url)
    disabled = rule(world, "in_app", audience_role="resolver")
    disabled.enabled = False
    db.session.commit()
    rule(other_world, "in_app", audience_role="auditor")
    ids = dispatch(world)
    rows = db.session.scalars(select(AlertDelivery).where(AlertDelivery.id.in_(ids))).all()
    assert sorted(r.channel for r in rows) == ["in_app", "webhook"]
    assert all(r.rule_id is not None and r.workspace_id == world.workspace.id for r in rows)


def test_failures_are_retried_with_back_off_then_marked_failed_with_a_safe_error(app, app_ctx, world,
                                                                                  http_receiver):
    url, received, answers = http_receiver
    answers.extend([500, 503])
    saved = rule(world, "webhook", webhook_url=f"{url}?token=s3cret-in-the-url")
    (delivery_id,) = dispatch(world)
    work(app)
    row = delivery(delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("retrying", 1, "webhook answered HTTP 500")
    assert get_queue("notifications").scheduled_job_registry.count >= 1  # the retry waits its back-off
    assert alerting.deliver(delivery_id, final_attempt=True) == "failed"
    row = delivery(delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "webhook answered HTTP 503")
    assert "s3cret" not in row.last_error and saved.signing_secret not in row.last_error


def test_the_last_attempt_of_the_job_marks_the_delivery_failed(app, app_ctx, world):
    closed_port = free_port()  # nothing listens there
    rule(world, "email", smtp_host="127.0.0.1", smtp_port=closed_port, from_address="opsdesk@example.test",
         to_addresses=["oncall@example.test"])
    (delivery_id,) = dispatch(world)
    get_queue("notifications").empty()
    enqueue("notifications", deliver_alert, delivery_id)  # no retries left: this run is the last
    work(app)
    row = delivery(delivery_id)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error == f"SMTP delivery to 127.0.0.1:{closed_port} failed: ConnectionRefusedError"


def test_an_unexpected_error_is_stored_as_its_kind_only(app_ctx, world, monkeypatch):
    rule(world, "webhook", webhook_url="https://hooks.example.test/ops")

    def broken(*args, **kwargs):
        raise RuntimeError("Traceback: password=hunter2")

    monkeypatch.setattr(alerting, "post_signed_json", broken)
    (delivery_id,) = dispatch(world)
    with pytest.raises(DeliveryError):
        alerting.deliver(delivery_id, final_attempt=False)
    row = delivery(delivery_id)
    assert (row.status, row.last_error) == ("retrying", "unexpected error: RuntimeError")


def test_delivery_is_idempotent(app, app_ctx, world, http_receiver):
    url, received, _ = http_receiver
    rule(world, "webhook", webhook_url=url)
    rule(world, "in_app", audience_role="workspace_admin")
    ids = dispatch(world)
    work(app)
    for delivery_id in ids:
        assert alerting.deliver(delivery_id, final_attempt=False) == "delivered"
        assert alerting.deliver(delivery_id, final_attempt=True) == "delivered"
    assert sum(1 for headers, _ in received if int(headers["X-Opsdesk-Delivery"]) in ids) == 1
    assert db.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.dedupe_key.in_([f"delivery:{i}" for i in ids]))) == 1
    assert {delivery(i).attempts for i in ids} == {1}


def test_without_a_rule_the_workspace_admins_get_an_in_app_alert(app, app_ctx, world, other_world):
    rule(other_world, "in_app", audience_role="auditor")  # another workspace's rules do not count
    (delivery_id,) = dispatch(world, message="Runbook audit.chain.verify failed")
    row = delivery(delivery_id)
    assert (row.channel, row.rule_id, row.status) == ("in_app", None, "queued")
    work(app)
    assert delivery(delivery_id).status == "delivered"
    alert = db.session.scalar(select(Alert).where(Alert.dedupe_key == f"delivery:{delivery_id}"))
    assert alert.workspace_id == world.workspace.id and alert.audience_role == "workspace_admin"
    assert alert.message == "Runbook audit.chain.verify failed"


def test_unknown_events_are_a_programming_error(app_ctx, world):
    with pytest.raises(ValueError):
        alerting.dispatch(workspace_id=world.workspace.id, tenant_id=None, event_type="no.such.event", message="x")


def test_deliveries_that_could_not_be_queued_are_swept_up(app, app_ctx, world, app_with_redis, private_redis):
    private_redis.stop()  # this application's Redis is down while the event is dispatched
    with app_with_redis.app_context():
        (delivery_id,) = alerting.dispatch(workspace_id=world.workspace.id, tenant_id=None, event_type=EVENT,
                                           message="Dispatched while Redis was down")
        db.session.commit()  # the commit succeeds; only the enqueue after it failed
    row = delivery(delivery_id)
    assert (row.status, row.attempts) == ("queued", 0)
    assert requeue_stalled_alerts() == 0 or delivery(delivery_id).status == "queued"  # too young to sweep
    db.session.execute(AlertDelivery.__table__.update().where(AlertDelivery.id == delivery_id)
                       .values(created_at=func.now() - db.text("interval '1 hour'")))
    db.session.commit()
    assert requeue_stalled_alerts() >= 1
    work(app)
    assert delivery(delivery_id).status == "delivered"


# -- rules ------------------------------------------------------------------------------------------------

def test_rule_validation_names_each_bad_field(app_ctx, world):
    with pytest.raises(ValidationFailed) as refused:
        rule(world, "email", smtp_host="bad host!", smtp_port=70000, from_address="nope", to_addresses=["x"])
    assert set(refused.value.fields) == {"smtp_host", "smtp_port", "from_address", "to_addresses"}
    with pytest.raises(ValidationFailed) as refused:
        alerting.save_rule(actor=world.actor(), event_type="nope", channel="sms")
    assert set(refused.value.fields) == {"event_type", "channel"}
    with pytest.raises(ValidationFailed) as refused:
        rule(world, "in_app", audience_role="nobody")
    assert set(refused.value.fields) == {"audience_role"}
    with pytest.raises(ValidationFailed) as refused:
        rule(world, "webhook", webhook_url="javascript:alert(1)")
    assert set(refused.value.fields) == {"webhook_url"}
    rule(world, "in_app", audience_role="resolver")
    with pytest.raises(ValidationFailed) as refused:
        rule(world, "in_app", audience_role="resolver")
    assert refused.value.fields == {"channel": "this event already goes there"}
    with pytest.raises(NotAllowed):
        alerting.save_rule(actor=world.actor("incident_manager"), event_type=EVENT, channel="in_app",
                           audience_role="resolver")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AlertRule)
                             .where(AlertRule.workspace_id == world.workspace.id)) == 1


def _rule_count(world) -> int:
    return db.session.scalar(select(func.count()).select_from(AlertRule).where(
        AlertRule.workspace_id == world.workspace.id))


def _rule_audits(world) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == world.workspace.id,
                                                       AuditEvent.ref_type == "alert_rule")
                              .order_by(AuditEvent.id)).all()


def test_the_rules_page_refuses_bad_fields_with_422_and_writes_nothing(client, world):
    client.login(world.email("workspace_admin"))
    page = client.get("/workspace/alert-rules")
    assert page.status_code == 200 and 'id="no-alert-rules"' in page.get_data(as_text=True)
    response = client.post("/workspace/alert-rules", {
        "event_type": EVENT, "channel": "email", "smtp_host": "", "smtp_port": "99999", "from_address": "nope",
        "to_addresses": "someone"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in ("required for e-mail", "a port between 1 and 65535", "an e-mail address",
                    "one or more e-mail addresses"):
        assert message in body
    assert 'value="nope"' in body  # what was typed comes back
    fragment = client.post("/workspace/alert-rules", {"event_type": "nope", "channel": "webhook",
                                                      "webhook_url": "ftp://files.example.test"}, htmx=True)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 422 and html_has_no_layout(text)
    assert "choose one of the events" in text and "an http(s) URL" in text
    db.session.rollback()
    assert _rule_count(world) == 0 and _rule_audits(world) == []


def test_a_webhook_rule_shows_its_secret_once_and_never_audits_it(client, world):
    client.login(world.email("workspace_admin"))
    response = client.post("/workspace/alert-rules", {"event_type": EVENT, "channel": "webhook",
                                                      "webhook_url": "https://hooks.example.test/opsdesk?key=k3y"})
    saved = db.session.scalar(select(AlertRule).where(AlertRule.workspace_id == world.workspace.id))
    assert response.status_code == 200 and saved.signing_secret in response.get_data(as_text=True)
    page = client.get("/workspace/alert-rules").get_data(as_text=True)
    assert "hooks.example.test/opsdesk" in page and saved.signing_secret not in page
    (audit,) = _rule_audits(world)
    assert audit.action == "create" and audit.actor_label == world.email("workspace_admin")
    audited = json.dumps([audit.field_deltas, audit.context])
    assert "https://hooks.example.test/opsdesk?…" in json.loads(audited)[0]["target"]
    assert saved.signing_secret not in audited and "k3y" not in audited  # nor a token in the URL
    fragment = client.post("/workspace/alert-rules", {"event_type": EVENT, "channel": "webhook",
                                                      "webhook_url": "https://second.example.test/hook"}, htmx=True)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and html_has_no_layout(text) and 'id="signing-secret"' in text
    assert "Alert rule added." in text and "second.example.test/hook" in text


def test_admins_add_and_delete_rules_on_the_page(client, world):
    client.login(world.email("workspace_admin"))
    added = client.post("/workspace/alert-rules", {"event_type": EVENT, "channel": "in_app",
                                                   "audience_role": "incident_manager"})
    assert added.status_code == 303
    saved = db.session.scalar(select(AlertRule).where(AlertRule.workspace_id == world.workspace.id))
    assert (saved.channel, saved.audience_role, saved.enabled) == ("in_app", "incident_manager", True)
    rule_id = saved.id
    assert f'id="alert-rule-{rule_id}"' in client.get("/workspace/alert-rules").get_data(as_text=True)
    (delivery_id,) = dispatch(world)
    assert client.post(f"/workspace/alert-rules/{rule_id}/delete").status_code == 303
    assert _rule_count(world) == 0
    assert delivery(delivery_id).rule_id is None  # the delivery record outlives its rule
    assert [a.context.get("deleted") for a in _rule_audits(world)] == [None, True]
    assert client.post(f"/workspace/alert-rules/{rule_id}/delete").status_code == 404


def test_only_workspace_admins_reach_the_rules_page(client, world):
    client.login(world.email("incident_manager"))
    assert client.get("/workspace/alert-rules").status_code == 403
    refused = client.post("/workspace/alert-rules", {"event_type": EVENT, "channel": "in_app",
                                                     "audience_role": "resolver"})
    assert refused.status_code == 403 and _rule_count(world) == 0


def test_the_channels_page_links_to_the_rules(client, world):
    client.login(world.email("workspace_admin"))
    assert 'href="/workspace/alert-rules"' in client.get("/workspace/channels").get_data(as_text=True)


# -- /system/deliveries -------------------------------------------------------------------------------

def make_delivery(world, *, status="delivered", channel="in_app", message="Runbook failed", rule_id=None,
                  last_error=None, tenant_id=None) -> AlertDelivery:
    row = AlertDelivery(workspace_id=world.workspace.id, tenant_id=tenant_id, rule_id=rule_id, event_type=EVENT,
                        channel=channel, status=status, attempts=0 if status == "queued" else 1,
                        last_error=last_error, payload={"event_type": EVENT, "message": message, "link": None,
                                                        "metadata": {}, "occurred_at": "2030-01-01T00:00:00+00:00"})
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture()
def operator_client(make_client):
    operator = make_platform_user()
    signed_in = make_client()
    signed_in.login_system(operator.email)
    return signed_in


def test_the_deliveries_page_spans_workspaces_and_filters(app_ctx, operator_client, world, other_world):
    make_delivery(world, message="World delivered one", tenant_id=world.tenant_a.id)
    make_delivery(world, status="failed", channel="webhook", message="World failed one",
                  last_error="webhook answered HTTP 502")
    make_delivery(other_world, status="retrying", channel="email", message="Other retrying one",
                  last_error="SMTP delivery to mail.example.test:25 failed: TimeoutError")
    body = operator_client.get("/system/deliveries").get_data(as_text=True)
    assert "World delivered one" in body and "World failed one" in body and "Other retrying one" in body
    assert "webhook answered HTTP 502" in body and world.tenant_a.name in body
    only = operator_client.get(f"/system/deliveries?workspace={world.workspace.id}", htmx=True)
    text = only.get_data(as_text=True)
    assert html_has_no_layout(text) and "World failed one" in text and "Other retrying one" not in text
    assert only.headers["HX-Push-Url"] == f"/system/deliveries?workspace={world.workspace.id}"
    failed = operator_client.get(f"/system/deliveries?workspace={world.workspace.id}&status=failed") \
        .get_data(as_text=True)
    assert "World failed one" in failed and "World delivered one" not in failed
    assert "Retry</button>" in failed
    by_channel = operator_client.get("/system/deliveries?channel=email&event_type=operations.run.failed")
    assert "Other retrying one" in by_channel.get_data(as_text=True)
    assert "World failed one" not in by_channel.get_data(as_text=True)
    assert operator_client.get("/system/deliveries?status=lost").status_code == 400
    assert operator_client.get("/system/deliveries?workspace=999999999").status_code == 400


def test_the_deliveries_page_pages_by_keyset_with_a_fixed_number_of_queries(app, app_ctx, operator_client,
                                                                             world):
    for n in range(55):
        make_delivery(world, message=f"bulk {n}")
    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        first = operator_client.get(f"/system/deliveries?workspace={world.workspace.id}").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(re.findall(r'id="delivery-\d+"', first)) == 50 and "bulk 54" in first and "bulk 4<" not in first
    assert len([s for s in statements if "alert_deliveries" in s]) == 1  # one query, whatever the rows
    next_url = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = operator_client.get(next_url).get_data(as_text=True)
    assert len(re.findall(r'id="delivery-\d+"', second)) == 5 and "bulk 0<" in second and 'rel="prev"' in second


def test_a_failed_delivery_is_retried_from_the_page(app, app_ctx, operator_client, world, http_receiver):
    url, received, answers = http_receiver
    answers.append(500)
    rule(world, "webhook", webhook_url=url)
    (delivery_id,) = dispatch(world)
    get_queue("notifications").empty()
    enqueue("notifications", deliver_alert, delivery_id)  # the last attempt
    work(app)
    assert delivery(delivery_id).status == "failed"
    response = operator_client.post(f"/system/deliveries/{delivery_id}/retry",
                                    {"next": f"/system/deliveries?workspace={world.workspace.id}"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/system/deliveries?workspace={world.workspace.id}"
    assert delivery(delivery_id).status == "queued"
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.ref_type == "alert_delivery",
                                                       AuditEvent.ref_id == str(delivery_id)))
    assert audit.workspace_id == world.workspace.id and audit.actor_type == "platform_user"
    assert audit.field_deltas == {"status": ["failed", "queued"]}
    work(app)
    row = delivery(delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)
    assert len([h for h, _ in received if h["X-Opsdesk-Delivery"] == str(delivery_id)]) == 2
    again = operator_client.post(f"/system/deliveries/{delivery_id}/retry")
    assert again.status_code == 409
    with pytest.raises(InvalidTransition):
        alerting.retry_delivery(actor=_platform_actor(), delivery_id=delivery_id)
    assert operator_client.post("/system/deliveries/999999999/retry").status_code == 404


def _platform_actor():
    from app.actors import Actor

    return Actor(kind="platform_user", id=None, label="op@platform.test", role="platform_operator")


def test_console_users_are_kept_out_of_the_deliveries_page(client, world):
    failed = make_delivery(world, status="failed", message="Kept out")
    client.login(world.email("workspace_admin"))
    page = client.get("/system/deliveries")
    assert page.status_code == 303 and page.headers["Location"].startswith("/system/login")
    retry = client.post(f"/system/deliveries/{failed.id}/retry")
    assert retry.status_code == 303 and delivery(failed.id).status == "failed"
    with pytest.raises(NotAllowed):
        alerting.list_deliveries(actor=world.actor(), filters=alerting.DeliveryFilters())
    with pytest.raises(NotAllowed):
        alerting.retry_delivery(actor=world.actor(), delivery_id=failed.id)
