"""Work that must wait until the current transaction has committed (enqueueing a job that reads
the rows this transaction writes). Dropped if the transaction rolls back."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

KEY = "after_commit"


def after_commit(session: Session, fn: Callable[[], object]) -> None:
    session.info.setdefault(KEY, []).append(fn)


def install(session_class) -> None:
    if getattr(session_class, "_opsdesk_after_commit", False):
        return
    session_class._opsdesk_after_commit = True

    @event.listens_for(session_class, "after_commit")
    def _run(session):
        pending = session.info.pop(KEY, [])
        for fn in pending:
            fn()

    @event.listens_for(session_class, "after_rollback")
    def _drop(session):
        session.info.pop(KEY, None)
