"""The application that jobs run in: the worker's own, or one built from the environment."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


def set_app(app: Flask) -> None:
    global _app
    _app = app


def get_app() -> Flask:
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def final_attempt() -> bool:
    """Whether the running job has no retry left (or runs outside RQ): its last chance to record a failure."""
    from rq import get_current_job

    job = get_current_job()
    return job is None or not job.retries_left


def with_app_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a job inside an application context with a fresh database session."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return fn(*args, **kwargs)
        app = get_app()
        with app.app_context():
            from app.extensions import db

            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper


__all__ = ["set_app", "get_app", "with_app_context", "final_attempt", "current_app"]
