"""/system: separate sign-in for platform users, break-glass, the platform audit views."""

from __future__ import annotations

from sqlalchemy import select, update

from app.audit.models import AuditEvent
from app.auth import sessions
from app.auth.models import BreakGlassGrant
from app.extensions import db
from tests.conftest import html_has_no_layout
from tests.factories import make_platform_user


def test_platform_user_signs_in_to_system_only(client):
    operator = make_platform_user()
    assert client.login_system(operator.email).status_code == 303
    assert client.get("/system/").status_code == 200
    console = client.get("/")
    assert console.status_code == 303 and console.headers["Location"].startswith("/login")


def test_console_users_cannot_sign_in_to_system(client, world):
    response = client.login_system(world.email("workspace_admin"))
    assert response.status_code == 401
    assert client.get("/system/").status_code == 303


def test_platform_users_cannot_sign_in_to_the_console(client):
    operator = make_platform_user()
    assert client.login(operator.email).status_code == 401


def test_system_sign_in_is_audited_in_the_platform_chain(client):
    operator = make_platform_user()
    client.login_system(operator.email)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.actor_type == "platform_user",
                                                        AuditEvent.actor_id == operator.id)).one()
    assert event.workspace_id is None and event.action == "login"


def test_break_glass_needs_a_reason(client):
    operator = make_platform_user()
    client.login_system(operator.email)
    response = client.post("/system/break-glass", {"reason": "short"})
    assert response.status_code == 422
    assert db.session.scalar(select(BreakGlassGrant).where(BreakGlassGrant.platform_user_id == operator.id)) is None


def test_break_glass_elevates_shows_a_banner_is_audited_and_ends_by_itself(client):
    operator = make_platform_user("platform_operator")
    client.login_system(operator.email)
    response = client.post("/system/break-glass", {"reason": "Customer outage, need admin access", "minutes": 15})
    assert response.status_code == 303
    page = client.get("/system/").get_data(as_text=True)
    assert 'id="break-glass-banner"' in page and "Customer outage" in page
    assert 'id="break-glass-banner"' in client.get("/system/audit").get_data(as_text=True)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "break_glass",
                                                        AuditEvent.actor_id == operator.id)).one()
    assert event.is_privileged and event.context["event"] == "started" and event.context["minutes"] == 15
    # time passes: the grant's end is in the past, and the elevation is gone without anyone acting
    db.session.execute(update(BreakGlassGrant).where(BreakGlassGrant.platform_user_id == operator.id)
                       .values(expires_at=db.func.now() - db.text("interval '1 second'")))
    db.session.commit()
    sessions.invalidate_profiles(sessions.PLATFORM, [operator.id])  # the cached profile's minute is up too
    assert 'id="break-glass-banner"' not in client.get("/system/").get_data(as_text=True)


def test_elevation_ends_at_its_time_even_from_a_cached_profile():
    from datetime import UTC, datetime, timedelta

    person = sessions.SignedIn(token="p.1.x", session_id=1, kind="platform_user", id=1, email="o@x", name="o",
                               role="platform_operator",
                               break_glass_until=datetime.now(UTC) - timedelta(seconds=1))
    assert not person.is_break_glass and not person.actor().is_break_glass


def test_break_glass_can_be_ended_early(client):
    operator = make_platform_user()
    client.login_system(operator.email)
    client.post("/system/break-glass", {"reason": "Investigating a stuck runbook"})
    assert client.post("/system/break-glass/end").status_code == 303
    assert 'id="break-glass-banner"' not in client.get("/system/").get_data(as_text=True)
    ended = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "break_glass",
                                                        AuditEvent.actor_id == operator.id)
                               .order_by(AuditEvent.id)).all()
    assert [e.context["event"] for e in ended] == ["started", "ended"]


def test_break_glass_lasts_at_most_the_configured_time(client, app):
    operator = make_platform_user()
    client.login_system(operator.email)
    too_long = app.config["BREAK_GLASS_MINUTES"] + 1
    response = client.post("/system/break-glass", {"reason": "A reason that is long enough", "minutes": too_long})
    assert response.status_code == 422


def test_elevation_acts_as_platform_admin(app_ctx):
    from app.actors import Actor

    operator = Actor(kind="platform_user", id=1, label="op", role="platform_operator")
    assert not operator.can("system.platform_users.manage")
    assert Actor(kind="platform_user", id=1, label="op", role="platform_operator",
                 is_break_glass=True).can("system.platform_users.manage")


def test_platform_audit_view_spans_workspaces_and_filters_by_chain(client, world, other_world):
    from app.audit import service as audit

    audit.record(actor=world.actor(), action="escalate", ref_type="incident", ref_id="in-world")
    audit.record(actor=other_world.actor(), action="escalate", ref_type="incident", ref_id="in-other")
    db.session.commit()
    operator = make_platform_user()
    client.login_system(operator.email)
    body = client.get("/system/audit?action=escalate").get_data(as_text=True)
    assert "in-world" in body and "in-other" in body
    only = client.get(f"/system/audit?action=escalate&workspace={world.workspace.id}", htmx=True).get_data(
        as_text=True)
    assert "in-world" in only and "in-other" not in only and html_has_no_layout(only)
    platform = client.get("/system/audit?workspace=platform&action=login").get_data(as_text=True)
    assert operator.email in platform
    csv_body = client.get(f"/system/audit/export.csv?workspace={other_world.workspace.id}&action=escalate") \
        .get_data(as_text=True)
    assert "in-other" in csv_body and "in-world" not in csv_body
    assert client.get("/system/audit?workspace=999999").status_code == 400


def test_system_sign_out(client):
    operator = make_platform_user()
    client.login_system(operator.email)
    assert client.post("/system/logout").status_code == 303
    assert client.get("/system/").status_code == 303
