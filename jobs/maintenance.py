"""Housekeeping jobs."""

from __future__ import annotations

from app.auth.sessions import prune_login_sessions
from jobs.context import with_app_context
from jobs.schedule import periodic


@with_app_context
@periodic(name="prune-sessions", every_seconds=3600, queue="maintenance")
def prune_sessions(keep_days: int = 30) -> int:
    """Delete login sessions that ended (expired or signed out) more than `keep_days` ago."""
    return prune_login_sessions(keep_days=keep_days)
