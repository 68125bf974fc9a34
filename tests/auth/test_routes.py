"""Console sign-in and sign-out: sessions, throttling, cookies, CSRF."""

from __future__ import annotations

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import LoginSession
from app.extensions import db
from tests.factories import PASSWORD, make_user


def audit_count(**where) -> int:
    query = select(func.count()).select_from(AuditEvent)
    for key, value in where.items():
        query = query.where(getattr(AuditEvent, key) == value)
    return db.session.scalar(query)


def test_sign_in_starts_a_session_and_shows_the_workspace(client, world):
    response = client.login(world.email("service_desk_analyst"))
    assert response.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    assert world.workspace.name in home.get_data(as_text=True)


def test_sign_in_is_audited_with_ip_and_user_agent(client, world):
    user = world.users["resolver"]
    client.login(user.email, headers={"User-Agent": "pytest-agent"})
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login",
                                                        AuditEvent.actor_id == user.id)).one()
    assert event.workspace_id == world.workspace.id
    assert event.context["outcome"] == "succeeded"
    assert event.user_agent == "pytest-agent" and event.ip == "127.0.0.1"


def test_wrong_password_and_unknown_user_get_the_same_answer(client, world):
    known = client.login(world.email("resolver"), "wrong password!")
    unknown = client.login("nobody-at-all@example.test", "wrong password!")
    assert known.status_code == unknown.status_code == 401
    message = "The e-mail address or password is not right."
    assert message in known.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert client.get("/").status_code == 303  # still signed out


def test_failed_sign_in_is_audited(client, world):
    user = world.users["resolver"]
    client.login(user.email, "wrong password!")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login",
                                                        AuditEvent.actor_id == user.id)).one()
    assert event.context["outcome"] == "failed"
    assert "password" not in str(event.context).lower().replace("realm", "")


def test_throttle_counts_failures_alike_for_known_and_unknown_addresses(app, make_client, world):
    limit = app.config["LOGIN_MAX_FAILURES"]
    for email in (world.email("change_manager"), "ghost-user@example.test"):
        client = make_client()
        for _ in range(limit):
            assert client.login(email, "not the password").status_code == 401
        refused = client.login(email, "not the password")
        assert refused.status_code == 429
        assert "Too many sign-in attempts" in refused.get_data(as_text=True)
        assert int(refused.headers["Retry-After"]) > 0
    # even the right password is refused while throttled, and no session starts
    client = make_client()
    assert client.login(world.email("change_manager"), PASSWORD).status_code == 429
    assert client.get("/").status_code == 303


def test_a_new_session_id_at_sign_in(client, world):
    client.get("/login")
    before = client.session_cookie()
    client.login(world.email("auditor"))
    after = client.session_cookie()
    assert before != after
    sessions = db.session.scalars(select(LoginSession).where(
        LoginSession.user_id == world.users["auditor"].id)).all()
    assert len(sessions) == 1 and len(sessions[0].token_hash) == 64


def test_sign_out_ends_the_session_even_for_a_copied_cookie(make_client, client, world):
    client.login(world.email("auditor"))
    stolen = client.session_cookie()
    assert client.get("/").status_code == 200
    assert client.logout().status_code == 303
    thief = make_client()
    thief.raw.set_cookie("opsdesk_session", stolen)
    response = thief.get("/")
    assert response.status_code == 303 and "/login" in response.headers["Location"]
    assert audit_count(action="logout", actor_id=world.users["auditor"].id) == 1


def test_session_cookie_flags(app, client, world):
    response = client.login(world.email("auditor"))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_configuration_marks_cookies_secure(monkeypatch):
    from app.config import Config

    config = Config({"DATABASE_URL": "postgresql://db/opsdesk", "REDIS_URL": "redis://cache",
                     "SECRET_KEY": "x" * 40})
    assert config.SESSION_COOKIE_SECURE and config.SESSION_COOKIE_HTTPONLY
    assert config.SESSION_COOKIE_SAMESITE == "Lax"


def test_sign_in_without_csrf_token_is_refused_and_writes_nothing(client, world):
    before = audit_count()
    response = client.post("/login", {"email": world.email("auditor"), "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert audit_count() == before
    assert client.get("/").status_code == 303


def test_disabled_account_cannot_sign_in(client, world):
    user = make_user(world.workspace, "resolver", active=False)
    assert client.login(user.email).status_code == 401


def _drop_from_redis(app, user_id: int) -> None:
    """What Redis does when the idle timeout passes (the key expires), or when it restarts."""
    redis = app.extensions["opsdesk_redis"]
    for digest in db.session.scalars(select(LoginSession.token_hash).where(LoginSession.user_id == user_id)):
        redis.delete(f"{app.config['REDIS_KEY_PREFIX']}:session:{digest}")


def test_idle_session_expires(app, client, world):
    client.login(world.email("auditor"))
    ttl = app.extensions["opsdesk_redis"].ttl(
        f"{app.config['REDIS_KEY_PREFIX']}:session:" + db.session.scalar(select(LoginSession.token_hash).where(
            LoginSession.user_id == world.users["auditor"].id)))
    assert 0 < ttl <= app.config["SESSION_IDLE_MINUTES"] * 60
    db.session.execute(LoginSession.__table__.update()
                       .where(LoginSession.user_id == world.users["auditor"].id)
                       .values(last_seen_at=func.now() - func.make_interval(0, 0, 0, 0, 5)))
    db.session.commit()
    _drop_from_redis(app, world.users["auditor"].id)
    assert client.get("/").status_code == 303


def test_a_session_survives_redis_losing_it(app, client, world):
    client.login(world.email("auditor"))
    _drop_from_redis(app, world.users["auditor"].id)
    assert client.get("/").status_code == 200


def test_console_pages_fail_closed_while_redis_is_down(app_with_redis, private_redis, world):
    from tests.http import SessionClient

    client = SessionClient(app_with_redis.test_client())
    client.login(world.email("auditor"))
    private_redis.stop()
    response = client.get("/audit")
    assert response.status_code == 503 and "Redis" in response.get_data(as_text=True)
    private_redis.start()
    assert client.get("/audit").status_code == 200  # the session comes back from PostgreSQL


def test_next_parameter_cannot_redirect_off_site(client, world):
    response = client.post("/login?next=//evil.example/", {"email": world.email("auditor"), "password": PASSWORD,
                                                          "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_console_user_lands_back_where_they_were_going(client, world):
    first = client.get("/audit?action=login")
    assert first.status_code == 303 and "next=" in first.headers["Location"]
    response = client.post("/login", {"email": world.email("auditor"), "password": PASSWORD,
                                      "next": "/audit?action=login"})
    assert response.headers["Location"] == "/audit?action=login"


def test_htmx_request_when_signed_out_redirects_the_page(client):
    response = client.get("/audit", htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/login")
