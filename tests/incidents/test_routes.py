"""The board and the incident page over HTTP: filters in the URL, fragments, counts, no query per row."""

from __future__ import annotations

import re

from sqlalchemy import event

from app.extensions import db
from app.incidents import service
from tests.conftest import html_has_no_layout


def report(world, title: str, severity: str = "p3", tenant=None, **extra):
    return service.create_incident(actor=world.actor("service_desk_analyst"), data={
        "title": title, "severity": severity, "tenant": (tenant or world.tenant_a).slug, **extra})


def act(world, incident, action, role="service_desk_analyst", **data):
    return service.perform(actor=world.actor(role), incident_id=incident.id, action=action, data=data)


def test_board_shows_active_incidents_by_default(client, world):
    report(world, "Checkout latency")
    closed = report(world, "Old printer issue")
    act(world, closed, "acknowledge")
    act(world, closed, "resolve", summary="Replaced toner.")
    client.login(world.email("service_desk_analyst"))
    body = client.get("/incidents").get_data(as_text=True)
    assert "Checkout latency" in body and "Old printer issue" not in body
    assert "Old printer issue" in client.get("/incidents?status=all").get_data(as_text=True)
    assert "Old printer issue" in client.get("/incidents?status=resolved").get_data(as_text=True)


def test_filters_combine_and_stay_in_the_url(client, world):
    report(world, "VPN outage", severity="p1", labels=["network"])
    report(world, "Slow search", severity="p3")
    report(world, "VPN flapping", severity="p3", tenant=world.tenant_b)
    client.login(world.email("service_desk_analyst"))
    response = client.get("/incidents?q=vpn&severity=p3", htmx=True, headers={"HX-Target": "board-results"})
    body = response.get_data(as_text=True)
    assert html_has_no_layout(body)
    assert "VPN flapping" in body and "VPN outage" not in body and "Slow search" not in body
    assert response.headers["HX-Push-Url"] == "/incidents?q=vpn&severity=p3"
    assert "VPN outage" in client.get("/incidents?label=network").get_data(as_text=True)
    assert "VPN outage" not in client.get(f"/incidents?tenant={world.tenant_b.id}").get_data(as_text=True)


def test_search_by_number(client, world):
    incident = report(world, "Numbered one")
    report(world, "Another one")
    client.login(world.email("service_desk_analyst"))
    body = client.get(f"/incidents?q={incident.reference}").get_data(as_text=True)
    assert "Numbered one" in body and "Another one" not in body


def test_bad_filters_answer_400_and_list_nothing(client, world):
    report(world, "Should not show")
    client.login(world.email("service_desk_analyst"))
    response = client.get("/incidents?severity=p9&sort=sideways")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Some filters are not valid" in body and "Should not show" not in body
    assert client.get("/incidents?cursor=not-a-cursor").status_code == 400


def test_counts_per_status_follow_the_filters(client, world):
    for title in ("a", "b", "c"):
        report(world, f"count {title}", severity="p2")
    investigating = report(world, "count d", severity="p4")
    act(world, investigating, "acknowledge")
    client.login(world.email("service_desk_analyst"))
    body = client.get("/incidents?severity=p2").get_data(as_text=True)
    counts = dict((status, int(n)) for n, status in re.findall(r'<span class="count">(\d+)</span> (\w[\w ]*)</a>', body))
    assert counts["Open"] == 3 and counts["Investigating"] == 0
    body = client.get("/incidents").get_data(as_text=True)
    counts = dict((status, int(n)) for n, status in re.findall(r'<span class="count">(\d+)</span> (\w[\w ]*)</a>', body))
    assert counts["Open"] == 3 and counts["Investigating"] == 1
    searched = client.get("/incidents?q=count").get_data(as_text=True)
    assert re.search(r'<span class="count">4</span> matches', searched)


def test_keyset_pages_walk_every_incident_once(client, world):
    titles = {f"paged incident {n:02d}" for n in range(57)}
    for title in sorted(titles):
        report(world, title)
    client.login(world.email("service_desk_analyst"))
    seen, url = [], "/incidents?q=paged"
    while url:
        body = client.get(url).get_data(as_text=True)
        seen += re.findall(r"paged incident \d\d", body)
        nxt = re.search(r'rel="next" href="([^"]+)"', body)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert len(seen) == 57 and set(seen) == titles


def test_the_board_runs_a_fixed_number_of_queries_whatever_the_rows(app, client, world):
    """No query per row: 3 incidents or 40, the board page costs the same number of statements."""
    client.login(world.email("service_desk_analyst"))
    with app.app_context():
        engine = db.engine

    def count_queries(path: str) -> int:
        statements = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            assert client.get(path).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return len(statements)

    for n in range(3):
        report(world, f"few {n}")
    few = count_queries("/incidents?q=few")
    for n in range(40):
        report(world, f"many {n}", labels=["bulk"])
    many = count_queries("/incidents?q=many")
    assert few == many
    assert count_queries("/incidents?view=columns") <= 8  # one per status column, whatever the rows


def test_columns_view(client, world):
    incident = report(world, "Column card")
    act(world, incident, "acknowledge")
    client.login(world.email("service_desk_analyst"))
    body = client.get("/incidents?view=columns").get_data(as_text=True)
    assert 'aria-label="Investigating"' in body and "Column card" in body


def test_live_refresh_keeps_the_filters(client, world):
    report(world, "Polled one", severity="p1")
    client.login(world.email("service_desk_analyst"))
    body = client.get("/incidents?severity=p1").get_data(as_text=True)
    poller = re.search(r'id="board-results" hx-get="([^"]+)" hx-trigger="every 20s"', body)
    assert poller and "severity=p1" in poller.group(1)
    refreshed = client.get(poller.group(1).replace("&amp;", "&"), htmx=True, headers={"HX-Trigger-Name": "poll"})
    assert "Polled one" in refreshed.get_data(as_text=True) and html_has_no_layout(refreshed.get_data(as_text=True))


def test_create_from_the_console(client, world):
    client.login(world.email("service_desk_analyst"))
    response = client.post("/incidents", {"title": "Console made", "severity": "p2", "tenant": world.tenant_a.id,
                                          "labels": "edge, cdn", "description": "**bold** <script>x</script>"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Console made" in page and "<strong>bold</strong>" in page and "<script>x" not in page
    assert "&lt;script&gt;" in page


def test_create_refuses_bad_input_inline(client, world):
    client.login(world.email("service_desk_analyst"))
    response = client.post("/incidents", {"title": "", "severity": "p7", "tenant": ""})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "required" in body and "one of" in body


def test_sop_form_success_swaps_the_incident(client, world):
    incident = report(world, "Swap me")
    client.login(world.email("service_desk_analyst"))
    response = client.post(f"/incidents/{incident.id}/actions/acknowledge", {"team": "L1"}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and html_has_no_layout(body)
    assert 'id="incident"' in body and "Investigating" in body


def test_refused_sop_comes_back_inside_its_form(client, world):
    incident = report(world, "Refuse me", severity="p1")
    act(world, incident, "acknowledge")
    act(world, incident, "resolve", summary="Rebooted.")
    client.login(world.email("incident_manager"))
    response = client.post(f"/incidents/{incident.id}/actions/close", {"notes": "done"}, htmx=True)
    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#form-close" and response.headers["HX-Reswap"] == "outerHTML"
    body = response.get_data(as_text=True)
    assert 'id="form-close"' in body and "signed-off post-incident review" in body and html_has_no_layout(body)
    other = report(world, "Refuse my field")
    client.logout()
    client.login(world.email("service_desk_analyst"))
    missing = client.post(f"/incidents/{other.id}/actions/acknowledge", {"team": "nowhere"}, htmx=True)
    assert missing.status_code == 422 and 'id="error-acknowledge-team"' in missing.get_data(as_text=True)


def test_an_action_not_offered_in_this_state_answers_with_an_alert(client, world):
    incident = report(world, "Not offered")
    client.login(world.email("service_desk_analyst"))
    response = client.post(f"/incidents/{incident.id}/actions/resolve", {"summary": "too early"}, htmx=True)
    assert response.status_code == 409 and response.headers["HX-Retarget"] == "#messages"
    assert "Cannot resolve an incident that is open" in response.get_data(as_text=True)


def test_refused_sop_without_javascript_renders_the_page_with_the_error(client, world):
    incident = report(world, "No JS")
    client.login(world.email("service_desk_analyst"))
    response = client.post(f"/incidents/{incident.id}/actions/close", {"notes": "x"})
    assert response.status_code == 409
    assert "<html" in response.get_data(as_text=True) and "Cannot close" in response.get_data(as_text=True)


def test_only_allowed_actions_are_offered(client, world):
    incident = report(world, "Offer list")
    client.login(world.email("auditor"))
    body = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="form-acknowledge"' not in body and "Nothing you can do" in body
    client.logout()
    client.login(world.email("service_desk_analyst"))
    body = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="form-acknowledge"' in body and 'id="form-close"' not in body


def test_retroactive_note_and_correction(client, world):
    incident = report(world, "Notes")
    client.login(world.email("service_desk_analyst"))
    client.post(f"/incidents/{incident.id}/actions/note", {"body": "Customer called at nine",
                                                            "occurred_at": "2020-01-01T09:00"})
    refused = client.post(f"/incidents/{incident.id}/actions/note", {"body": "From the future",
                                                                      "occurred_at": "2999-01-01T09:00"}, htmx=True)
    assert refused.status_code == 422 and "future" in refused.get_data(as_text=True)
    client.post(f"/incidents/{incident.id}/actions/note", {"body": "Customer called at nine",
                                                            "occurred_at": "2026-01-01T09:00"})
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "more than a year" not in page


def test_sla_breach_report_and_csv(client, world):
    incident = report(world, "Late one", severity="p1")
    db.session.execute(incident.__table__.update().where(incident.__table__.c.id == incident.id).values(
        acknowledge_due_at=db.func.now() - db.text("interval '1 hour'"),
        resolve_due_at=db.func.now() - db.text("interval '1 minute'")))
    db.session.commit()
    from app.incidents import sla

    sla.scan_breaches()
    client.login(world.email("service_desk_manager"))
    body = client.get("/incidents/sla-breaches").get_data(as_text=True)
    assert "Late one" in body and "acknowledge" in body
    csv_body = client.get("/incidents/sla-breaches?format=csv").get_data(as_text=True)
    assert csv_body.splitlines()[0].startswith("number,title") and incident.reference in csv_body
    assert client.get("/incidents/sla-breaches?since=nope").status_code == 400
