"""Readiness checks: does each dependency answer right now?"""

from __future__ import annotations

import logging

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db, get_redis

log = logging.getLogger(__name__)


def check_dependencies() -> dict[str, str]:
    """`{"database": "ok"|"down", "redis": "ok"|"down"}`; each check has a short timeout."""
    checks = {}
    try:
        db.session.execute(text("SET LOCAL statement_timeout = 2000"))
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "ok"
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("readiness: database down: %s", error.__class__.__name__)
        checks["database"] = "down"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except redis.RedisError as error:
        log.warning("readiness: redis down: %s", error.__class__.__name__)
        checks["redis"] = "down"
    return checks
