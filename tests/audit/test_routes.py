"""Audit views: filters, the privileged view, keyset pages, CSV export, links, access."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from app.actors import Actor
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.extensions import db
from tests.conftest import html_has_no_layout


def seed(world, count: int = 3):
    """A few events of different kinds across both tenants of the world."""
    actor = world.actor("workspace_admin")
    for n in range(count):
        audit.record(actor=actor, action="update", ref_type="incident", ref_id=f"inc-{n}",
                     tenant_id=world.tenant_a.id, field_deltas={"status": ["open", "investigating"]})
        audit.record(actor=actor, action="escalate", ref_type="incident", ref_id=f"inc-b-{n}",
                     tenant_id=world.tenant_b.id)
    audit.record(actor=actor, action="update", ref_type="membership", ref_id="1",
                 field_deltas={"role": ["resolver", "incident_manager"]}, context={"user": world.email("resolver")})
    db.session.commit()


def test_auditor_sees_the_trail_with_deltas(client, world):
    seed(world)
    client.login(world.email("auditor"))
    body = client.get("/audit").get_data(as_text=True)
    assert "inc-0" in body and "escalate" in body and "investigating" in body


def test_filters_by_action_tenant_and_actor(client, world):
    seed(world)
    client.login(world.email("auditor"))
    body = client.get(f"/audit?action=escalate&tenant={world.tenant_b.id}").get_data(as_text=True)
    assert "inc-b-0" in body and "inc-0<" not in body and "#inc-0" not in body
    body = client.get(f"/audit?actor={world.email('workspace_admin')}&action=update&ref_type=membership") \
        .get_data(as_text=True)
    assert "membership" in body and "inc-b-0" not in body
    assert "No audit events match" in client.get("/audit?actor=nobody@example.test").get_data(as_text=True)


def test_filter_by_time_window(client, world):
    seed(world, 1)
    client.login(world.email("auditor"))
    assert "inc-0" not in client.get("/audit?until=2000-01-01T00:00").get_data(as_text=True)
    assert "inc-0" in client.get("/audit?since=2000-01-01T00:00").get_data(as_text=True)


def test_bad_filters_answer_400_with_the_reason(client, world):
    client.login(world.email("auditor"))
    response = client.get("/audit?since=yesterday&action=explode")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Some filters are not valid" in body and "From (UTC)" in body
    reversed_window = client.get("/audit?since=2026-02-01T00:00&until=2026-01-01T00:00")
    assert reversed_window.status_code == 400 and "Must be after" in reversed_window.get_data(as_text=True)


def test_htmx_filter_returns_only_the_results_fragment(client, world):
    seed(world, 1)
    client.login(world.email("auditor"))
    response = client.get("/audit?action=escalate", htmx=True, headers={"HX-Target": "results"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and html_has_no_layout(body)
    assert "inc-b-0" in body and "audit-filters" not in body
    assert "HX-Request" in response.headers["Vary"]


def test_privileged_view_shows_only_privileged_changes(client, world):
    seed(world)
    client.login(world.email("auditor"))
    body = client.get("/audit/privileged").get_data(as_text=True)
    assert "incident_manager" in body and "inc-0" not in body


def test_keyset_pages_walk_every_event_once(client, world):
    actor = world.actor()
    for n in range(120):
        audit.record(actor=actor, action="tool_use", ref_type="tool", ref_id=f"run-{n:03d}")
    db.session.commit()
    client.login(world.email("auditor"))
    seen, url = [], "/audit?action=tool_use"
    import re

    while url:
        body = client.get(url).get_data(as_text=True)
        seen += re.findall(r"#(run-\d{3})", body)
        older = re.search(r'rel="next" href="([^"]+)"', body)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen[0] == "run-119" and seen[-1] == "run-000"
    # and back: the newer link of the last page leads to the page before it
    body = client.get("/audit?action=tool_use&before=" + str(
        db.session.scalar(select(AuditEvent.id).where(AuditEvent.ref_id == "run-020")))).get_data(as_text=True)
    assert "#run-019" in body and 'rel="prev"' in body


def test_csv_export_applies_the_filters_and_is_itself_audited(client, world):
    seed(world, 2)
    client.login(world.email("auditor"))
    response = client.get(f"/audit/export.csv?action=escalate&tenant={world.tenant_b.id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["ref_id"] for r in rows} == {"inc-b-0", "inc-b-1"}
    assert all(r["action"] == "escalate" and len(r["row_hash"]) == 64 for r in rows)
    export = db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == world.workspace.id,
                                                         AuditEvent.ref_type == "audit_export")).one()
    assert export.action == "read" and export.context["filters"]["action"] == "escalate"


def test_rows_link_to_what_they_refer_to(client, world):
    seed(world, 1)
    client.login(world.email("workspace_admin"))
    body = client.get("/audit?ref_type=membership").get_data(as_text=True)
    assert f'href="/workspace/members?q={world.email("resolver")}"' in body


def test_roles_without_audit_access_are_refused(client, world):
    client.login(world.email("resolver"))
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_tenant_limited_auditor_sees_only_their_tenant(client, world):
    seed(world, 1)
    client.login(world.limited.email)
    body = client.get("/audit").get_data(as_text=True)
    assert "inc-0" in body and "inc-b-0" not in body and "incident_manager" not in body
    rows = list(csv.DictReader(io.StringIO(client.get("/audit/export.csv").get_data(as_text=True))))
    assert rows and {r["tenant"] for r in rows} == {world.tenant_a.name}


def test_another_workspace_never_shows(client, world, other_world):
    audit.record(actor=other_world.actor(), action="escalate", ref_type="incident", ref_id="secret-elsewhere")
    db.session.commit()
    client.login(world.email("auditor"))
    assert "secret-elsewhere" not in client.get("/audit").get_data(as_text=True)
    assert "secret-elsewhere" not in client.get("/audit/export.csv").get_data(as_text=True)
    filtered = client.get("/audit?ref_id=secret-elsewhere").get_data(as_text=True)
    assert "#secret-elsewhere" not in filtered and "No audit events match" in filtered


def test_export_streams_with_the_system_actor_scope(app_ctx, world):
    """Service level: iter_events pages through everything in keyset batches."""
    actor = world.actor()
    for n in range(25):
        audit.record(actor=actor, action="tool_use", ref_type="tool", ref_id=str(n))
    db.session.commit()
    events = list(audit.iter_events(actor=world.actor("auditor"), filters=audit.AuditFilters(action="tool_use"),
                                    batch=10))
    assert [e.ref_id for e in events] == [str(n) for n in range(24, -1, -1)]
    assert Actor.system().can("audit.view")
