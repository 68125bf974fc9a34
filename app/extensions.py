"""Extension objects, created unbound and initialised by the application factory."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay readable after commit (rendering a just-saved row needs no reload query).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()


def init_redis(app: Flask) -> None:
    timeout = app.config["REDIS_TIMEOUT_SECONDS"]
    app.extensions["opsdesk_redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout,
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    """The application's Redis client (connections are pooled and made on first use)."""
    return current_app.extensions["opsdesk_redis"]


def redis_key(*parts: object) -> str:
    """A key in this deployment's namespace, so test runs and deployments never collide."""
    return ":".join([current_app.config["REDIS_KEY_PREFIX"], *map(str, parts)])
