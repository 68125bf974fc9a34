"""Liveness and readiness: 503 naming what is down, and recovery when it returns."""

from __future__ import annotations

from tests.http import SessionClient


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_names_redis_when_it_stops_and_recovers(app_with_redis, private_redis):
    client = SessionClient(app_with_redis.test_client())
    assert client.get("/readyz").status_code == 200
    private_redis.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["redis"]
    assert response.get_json()["checks"]["database"] == "ok"
    private_redis.start()
    assert client.get("/readyz").status_code == 200


def test_readyz_names_the_database_when_it_is_unreachable(make_app):
    application = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                           SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})
    client = SessionClient(application.test_client())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"database": "down", "redis": "ok"},
                                   "failed": ["database"]}
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_pages_answer_503_while_redis_is_down(app_with_redis, private_redis, world):
    client = SessionClient(app_with_redis.test_client())
    private_redis.stop()
    response = client.post("/login", {"email": world.email("auditor"), "password": "whatever-it-is"})
    assert response.status_code == 503
    assert "unavailable" in response.get_data(as_text=True).lower()
