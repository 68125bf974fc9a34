"""The worker runs jobs from our queues; periodic jobs book each slot exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.auth.models import LoginSession
from app.extensions import db
from jobs import maintenance
from jobs.queues import enqueue, get_queue
from jobs.schedule import book_next, registered
from jobs.worker import run_worker


def test_prune_sessions_runs_on_a_real_worker(app, app_ctx, world):
    user = world.users["auditor"]
    now = datetime.now(UTC)
    db.session.add_all([
        LoginSession(token_hash="a" * 64, user_id=user.id, expires_at=now - timedelta(days=40)),
        LoginSession(token_hash="b" * 64, user_id=user.id, expires_at=now + timedelta(hours=1)),
        LoginSession(token_hash="c" * 64, user_id=user.id, expires_at=now + timedelta(hours=1),
                     revoked_at=now - timedelta(days=31)),
    ])
    db.session.commit()
    job = enqueue("maintenance", maintenance.prune_sessions, 30)
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() >= 2
    left = db.session.scalars(select(LoginSession.token_hash).where(LoginSession.user_id == user.id)).all()
    assert left == ["b" * 64]


def test_periodic_slots_are_booked_once(app, app_ctx):
    prune = registered()["prune-sessions"]
    at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    first = book_next(prune, now=at)
    assert first == f"{app.config['RQ_QUEUE_PREFIX']}-periodic-prune-sessions-{int(at // 3600) + 1}"
    assert book_next(prune, now=at + 5) is None  # a second worker starting in the same slot
    scheduled = get_queue("maintenance").scheduled_job_registry.get_job_ids()
    assert scheduled.count(first) == 1


def test_a_periodic_run_books_its_successor(app, app_ctx):
    queue = get_queue("maintenance")
    registry = queue.scheduled_job_registry
    before = set(registry.get_job_ids())
    maintenance.prune_sessions()
    booked = set(registry.get_job_ids()) - before
    slot = int(datetime.now(UTC).timestamp() // 3600) + 1
    expected = f"{app.config['RQ_QUEUE_PREFIX']}-periodic-prune-sessions-{slot}"
    assert booked <= {expected} and expected in registry.get_job_ids()
