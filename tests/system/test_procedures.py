"""/system common procedures: service health, the queue backlog and failed jobs (retry, delete)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib
from rq import Worker
from rq.job import JobStatus
from rq.results import Result
from rq.scheduler import RQScheduler
from rq.utils import utcformat
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth import guards, sessions
from app.extensions import db, get_redis
from app.system import queues as queue_service
from app.system.health import check_scheduler, gather_health, list_workers
from jobs.queues import FAILURE_TTL, QUEUES, all_queues, enqueue, get_queue, queue_name
from jobs.schedule import book_next, registered
from jobs.worker import run_worker
from tests.conftest import html_has_no_layout
from tests.factories import make_platform_user


def explode(n: int) -> None:
    """A job that fails with a multi-line traceback."""
    raise RuntimeError(f"boom {n}")


def idle(n: int = 0) -> int:
    return n


@pytest.fixture()
def empty_queues(app_ctx):
    """Our queues and registries start (and end) empty: the run's tests share one queue prefix."""
    def clear():
        keys = []
        for queue in all_queues():
            keys += [queue.key, queue.started_job_registry.key, queue.scheduled_job_registry.key,
                     queue.deferred_job_registry.key, queue.failed_job_registry.key, queue.finished_job_registry.key,
                     RQScheduler.get_locking_key(queue.name)]
        get_redis().delete(*keys)

    clear()
    yield
    clear()


@pytest.fixture()
def operator(client, empty_queues):
    person = make_platform_user("platform_operator")
    assert client.login_system(person.email).status_code == 303
    return person


def fail_directly(queue: str, func, count: int, *, ended_at: datetime | None = None) -> list[str]:
    """Put `count` failed jobs straight into a queue's FailedJobRegistry (as a worker would leave them)."""
    q = get_queue(queue)
    ended_at = ended_at or datetime.now(UTC)
    ids = []
    with get_redis().pipeline() as pipe:
        for n in range(count):
            job = q.create_job(func, args=(n,), failure_ttl=FAILURE_TTL)
            job.enqueued_at, job.started_at, job.ended_at = ended_at, ended_at, ended_at
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            trace = f'Traceback (most recent call last):\n  File "job.py", line 3, in run\nValueError: bad input {n}'
            q.failed_job_registry.add(job, ttl=FAILURE_TTL, exc_string=trace, pipeline=pipe)
            Result.create_failure(job, FAILURE_TTL, exc_string=trace, pipeline=pipe)
            ids.append(job.id)
        pipe.execute()
    return ids


def depth_row(body: str, queue: str) -> list[int]:
    row = re.search(rf'<tr id="depth-{queue}">(.*?)</tr>', body, re.S)
    assert row, f"no depth row for {queue}"
    return [int(n) for n in re.findall(r'<td class="num">(?:<a [^>]*>)?(\d+)', row.group(1))]


def job_rows(body: str) -> list[str]:
    return re.findall(r'<tr id="job-([^"]+)">', body)


def job_audit_events(job_id: str | None = None) -> list[AuditEvent]:
    db.session.rollback()
    query = select(AuditEvent).where(AuditEvent.ref_type == "job").order_by(AuditEvent.id)
    if job_id is not None:
        query = query.where(AuditEvent.ref_id == job_id)
    return list(db.session.scalars(query))


# -- service health ------------------------------------------------------------------------------------

def test_health_shows_database_redis_registered_workers_and_real_queue_depth(app, client, operator):
    for n in range(3):
        enqueue("maintenance", idle, n)
    # a worker of its own connection: RQ raises the socket timeout of the client a Worker is given
    worker_redis = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    live = Worker([get_queue("urgent"), get_queue("default")], connection=worker_redis, name=f"live-{uuid.uuid4().hex[:8]}")
    gone = Worker([get_queue("default")], connection=worker_redis, name=f"gone-{uuid.uuid4().hex[:8]}")
    live.register_birth()
    gone.register_birth()
    worker_redis.hset(gone.key, "last_heartbeat", utcformat(datetime.now(UTC) - timedelta(hours=1)))
    try:
        response = client.get("/system/health")
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        database = body[body.index('id="health-database"'):body.index('id="health-redis"')]
        assert '<span class="tag ok">OK</span>' in database and "PostgreSQL" in database and " ms" in database
        redis_panel = body[body.index('id="health-redis"'):body.index('id="health-workers-summary"')]
        assert '<span class="tag ok">OK</span>' in redis_panel and "Memory" in redis_panel
        workers = body[body.index('id="health-workers"'):body.index('id="health-scheduler"')]
        assert live.name in workers and "urgent, default" in workers
        assert re.search(rf"{gone.name}</code> <span class=\"tag danger\">stale</span>", workers)
        assert not re.search(rf"{live.name}</code> <span class=\"tag danger\">stale", workers)
        assert depth_row(body, "maintenance") == [3, 0, 0, 0, 0]
        assert depth_row(body, "urgent") == [0, 0, 0, 0, 0]
    finally:
        live.register_death()
        gone.register_death()
        worker_redis.close()


def test_reading_workers_keeps_the_web_processs_short_redis_timeout(app, make_app, empty_queues):
    # RQ's Worker raises the socket timeout of the connection it is given to suit a blocking dequeue
    worker_redis = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    worker = Worker([get_queue("urgent")], connection=worker_redis, name=f"timeout-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    application = make_app()
    try:
        with application.app_context():
            timeout = get_redis().connection_pool.connection_kwargs["socket_timeout"]
            assert worker.name in [w.name for w in list_workers()]
            assert get_redis().connection_pool.connection_kwargs["socket_timeout"] == timeout == \
                application.config["REDIS_TIMEOUT_SECONDS"]
    finally:
        worker.register_death()
        worker_redis.close()


def test_health_polls_a_fragment_of_itself(client, operator):
    response = client.get("/system/health", htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and html_has_no_layout(body)
    assert 'id="health"' in body and 'hx-trigger="every 5s"' in body
    assert "HX-Request" in response.headers.get("Vary", "")


def test_a_burst_worker_leaves_its_counts_and_the_failures_in_the_depth(app, client, operator):
    enqueue("default", idle, 1)
    enqueue("default", explode, 2)
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    body = client.get("/system/health").get_data(as_text=True)
    assert depth_row(body, "default") == [0, 0, 0, 0, 1]


def test_scheduler_lock_and_next_periodic_run_are_shown(app, client, operator):
    client_redis = get_redis()
    health = check_scheduler()
    assert not health.running and sorted(health.unlocked) == sorted(QUEUES)
    assert "No RQ scheduler holds the lock" in client.get("/system/health").get_data(as_text=True)

    for name in QUEUES:
        client_redis.set(RQScheduler.get_locking_key(queue_name(name)), "scheduler-on-host-1", ex=60)
    prune = registered()["prune-sessions"]
    booked = book_next(prune, now=time.time() + 7 * 86400)  # a slot no other test books
    slot = int(booked.rsplit("-", 1)[1])
    health = check_scheduler()
    assert health.running and health.unlocked == [] and set(health.locks.values()) == {"scheduler-on-host-1"}
    row = next(p for p in health.periodic if p.name == "prune-sessions")
    assert row.job_id == booked and row.queue == "maintenance"
    assert row.next_run == datetime.fromtimestamp(slot * prune.every_seconds, UTC)
    body = client.get("/system/health").get_data(as_text=True)
    assert "scheduler-on-host-1" in body and row.next_run.strftime("%Y-%m-%d %H:%M:%S") in body


def _platform_session(application, monkeypatch):
    """A client signed in to /system without asking Redis or PostgreSQL who it is.

    Real sessions fail closed (503) while Redis is down (tests/health); the health page's own
    degradation is what these tests check, so the session layer is stood in for here.
    """
    person = sessions.SignedIn(token="p.999999.health-test", session_id=1, kind="platform_user", id=999999,
                               email="health@platform.test", name="Health check", role="platform_operator")
    monkeypatch.setattr(guards, "load_signed_in", lambda token: person if token == person.token else None)
    test_client = application.test_client()
    with test_client.session_transaction() as flask_session:
        flask_session["_user_id"] = person.token
        flask_session["_fresh"] = True
    return test_client


def test_health_page_renders_with_redis_down(app_with_redis, private_redis, monkeypatch):
    test_client = _platform_session(app_with_redis, monkeypatch)
    assert test_client.get("/system/health").status_code == 200
    private_redis.stop()
    response = test_client.get("/system/health")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    database = body[body.index('id="health-database"'):body.index('id="health-redis"')]
    assert '<span class="tag ok">OK</span>' in database
    redis_panel = body[body.index('id="health-redis"'):body.index('id="health-workers-summary"')]
    assert '<span class="tag danger">down</span>' in redis_panel and "Not answering" in redis_panel
    for section in ("health-workers", "health-scheduler", "health-queues"):
        part = body[body.index(f'id="{section}"'):]
        assert "Unavailable: Redis is not answering." in part[:600], section


def test_health_service_with_the_database_down(make_app):
    application = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                           SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})
    with application.app_context():
        health = gather_health()
    assert not health.database.ok and health.database.error and health.database.latency_ms is None
    assert health.redis.ok and health.queues.ok and health.workers.error is None


def test_health_page_renders_with_the_database_down(make_app, monkeypatch):
    application = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                           SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})
    response = _platform_session(application, monkeypatch).get("/system/health")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    database = body[body.index('id="health-database"'):body.index('id="health-redis"')]
    assert '<span class="tag danger">down</span>' in database and "Not answering" in database
    redis_panel = body[body.index('id="health-redis"'):body.index('id="health-workers-summary"')]
    assert '<span class="tag ok">OK</span>' in redis_panel
    assert 'id="depth-urgent"' in body


# -- failed jobs ---------------------------------------------------------------------------------------

def test_a_failed_job_is_listed_with_only_the_last_line_of_its_exception(app, client, operator):
    job = enqueue("default", explode, 7)
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    job.refresh()
    assert job.get_status() == "failed"
    body = client.get("/system/queues").get_data(as_text=True)
    assert job_rows(body) == [job.id]
    row = body[body.index(f'<tr id="job-{job.id}">'):]
    row = row[:row.index("</tr>")]
    assert "tests.system.test_procedures.explode" in row and "(7)" in row
    assert "RuntimeError: boom 7" in row
    assert "Traceback" not in body and 'File "' not in body
    assert re.search(r'<td class="num">1</td>', row)  # one attempt
    assert depth_row(body, "default")[-1] == 1


def test_retry_puts_the_job_back_on_its_queue_and_is_audited(app, client, operator):
    job = enqueue("default", explode, 1)
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    response = client.post(f"/system/queues/default/failed/{job.id}/retry", {"next": "/system/queues?queue=default"})
    assert response.status_code == 303 and response.headers["Location"] == "/system/queues?queue=default"
    queue = get_queue("default")
    assert job.id in queue.job_ids and job.id not in queue.failed_job_registry
    page = client.get("/system/queues?queue=default").get_data(as_text=True)
    assert f"Job {job.id}" in page and "back on the default queue" in page and job_rows(page) == []
    [event] = job_audit_events(job.id)
    assert event.action == "update" and event.actor_type == "platform_user" and event.actor_id == operator.id
    assert event.workspace_id is None and event.field_deltas == {"status": ["failed", "queued"]}
    assert event.context["operation"] == "retry" and event.context["queue"] == "default"
    # it runs (and fails) again: a second attempt is counted
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    row = client.get("/system/queues").get_data(as_text=True)
    row = row[row.index(f'<tr id="job-{job.id}">'):]
    assert re.search(r'<td class="num">2</td>', row[:row.index("</tr>")])


def test_delete_removes_the_failed_job_and_is_audited(app, client, operator):
    job = enqueue("default", explode, 1)
    run_worker(app, burst=True, simple=True, with_scheduler=False)
    response = client.post(f"/system/queues/default/failed/{job.id}/delete", htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/system/queues"
    assert job.id not in get_queue("default").failed_job_registry
    assert not get_redis().exists(job.key)
    [event] = job_audit_events(job.id)
    assert event.field_deltas == {"status": ["failed", "deleted"]} and event.context["operation"] == "delete"
    assert job_rows(client.get("/system/queues").get_data(as_text=True)) == []


def test_bad_job_ids_answer_404_and_change_nothing(app, client, operator):
    [failed] = fail_directly("urgent", explode, 1)
    queued = enqueue("default", idle, 1)
    before = job_audit_events()
    attempts = [
        "/system/queues/default/failed/no-such-job/retry",
        f"/system/queues/default/failed/{failed}/retry",  # failed, but in another queue
        f"/system/queues/nope/failed/{failed}/retry",
        f"/system/queues/default/failed/{queued.id}/retry",  # exists, but is not a failed job
        "/system/queues/default/failed/bad%20id%3B/delete",
        f"/system/queues/default/failed/{failed}/delete",
        f"/system/queues/default/failed/{queued.id}/delete",
        "/system/queues/nope/failed/retry-all",
    ]
    for path in attempts:
        response = client.post(path)
        assert response.status_code == 404, path
        assert "No failed job" in response.get_data(as_text=True) or "no queue" in response.get_data(as_text=True)
    assert failed in get_queue("urgent").failed_job_registry and queued.id in get_queue("default").job_ids
    assert get_redis().exists(queued.key)
    assert job_audit_events() == before


def test_filters_and_paging(client, operator):
    now = datetime.now(UTC)
    noop_ids = fail_directly("maintenance", idle, 60)
    old_ids = fail_directly("urgent", explode, 3, ended_at=now - timedelta(days=2))

    first = client.get("/system/queues?queue=maintenance").get_data(as_text=True)
    first_ids = job_rows(first)
    assert len(first_ids) == 50 and set(first_ids) <= set(noop_ids)
    assert "ValueError: bad input" in first and "Traceback" not in first
    assert "offset=50" in first
    second = job_rows(client.get("/system/queues?queue=maintenance&offset=50").get_data(as_text=True))
    assert len(second) == 10 and set(first_ids) | set(second) == set(noop_ids)

    everything = client.get("/system/queues").get_data(as_text=True)  # queue by queue, urgent first
    assert set(job_rows(everything)[:3]) == set(old_ids) and len(job_rows(everything)) == 50 and "of 63" in everything
    rest = job_rows(client.get("/system/queues?offset=50").get_data(as_text=True))
    assert len(rest) == 13 and set(rest) <= set(noop_ids)

    by_function = job_rows(client.get("/system/queues?function=EXPLODE").get_data(as_text=True))
    assert sorted(by_function) == sorted(old_ids)
    assert job_rows(client.get("/system/queues?queue=urgent&function=idle").get_data(as_text=True)) == []
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    recent = job_rows(client.get(f"/system/queues?since={since}").get_data(as_text=True))
    assert len(recent) == 50 and not set(recent) & set(old_ids)
    older = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    assert sorted(job_rows(client.get(f"/system/queues?queue=urgent&since={older}").get_data(as_text=True))) == \
        sorted(old_ids)

    fragment = client.get("/system/queues?queue=urgent", htmx=True)
    assert html_has_no_layout(fragment.get_data(as_text=True)) and fragment.headers["HX-Push-Url"] == \
        "/system/queues?queue=urgent"
    assert client.get("/system/queues?since=yesterday").status_code == 400
    assert client.get("/system/queues?queue=nope").status_code == 400


def test_ids_whose_jobs_are_gone_or_half_written_are_skipped(client, operator):
    [real] = fail_directly("default", explode, 1)
    registry = get_queue("default").failed_job_registry
    ghost, torn = f"gone-{uuid.uuid4().hex}", f"torn-{uuid.uuid4().hex}"
    get_redis().zadd(registry.key, {ghost: time.time() + 3600, torn: time.time() + 3600})
    get_redis().hset(f"rq:job:{torn}", "last_heartbeat", "2030-01-01T00:00:00.000000Z")  # a heartbeat after a delete
    try:
        response = client.get("/system/queues")
        assert response.status_code == 200 and job_rows(response.get_data(as_text=True)) == [real]
    finally:
        get_redis().delete(f"rq:job:{torn}")


def test_a_filtered_scan_stops_early_and_says_where_to_continue(app_ctx, empty_queues):
    fail_directly("urgent", idle, 30)  # urgent is read before default
    [wanted] = fail_directly("default", explode, 1)
    filters = queue_service.FailedJobFilters(function="explode")
    page = queue_service.list_failed_jobs(filters=filters, scan_limit=20)
    assert page.jobs == [] and page.next_offset == 20 and page.total == 31
    page = queue_service.list_failed_jobs(filters=filters, offset=page.next_offset, scan_limit=20)
    assert [j.id for j in page.jobs] == [wanted] and page.next_offset is None


def test_retry_all_requeues_a_bounded_batch_and_is_audited(client, operator):
    ids = fail_directly("maintenance", idle, 30)
    outcome = queue_service.retry_all_failed_jobs(actor=operator_actor(operator), queue="maintenance", limit=12)
    assert (outcome.requeued, outcome.skipped, outcome.remaining) == (12, 0, 18)
    response = client.post("/system/queues/maintenance/failed/retry-all")
    assert response.status_code == 303
    page = client.get("/system/queues").get_data(as_text=True)
    assert "Requeued 18 failed jobs of the maintenance queue." in page
    queue = get_queue("maintenance")
    assert sorted(queue.job_ids) == sorted(ids) and queue.failed_job_registry.count == 0
    events = [e for e in job_audit_events() if e.actor_id == operator.id]
    assert [e.context["selected"] for e in events] == [12, 18]
    assert all(e.context["operation"] == "retry_all" and e.context["queue"] == "maintenance" for e in events)


def operator_actor(person):
    return sessions.SignedIn(token="p.0.x", session_id=0, kind="platform_user", id=person.id, email=person.email,
                             name=person.name, role=person.role).actor()


def test_console_users_are_kept_out(client, world, empty_queues):
    [failed] = fail_directly("default", explode, 1)
    client.login(world.email("workspace_admin"))
    for path in ("/system/health", "/system/queues"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].startswith("/system/login")
    response = client.post(f"/system/queues/default/failed/{failed}/retry")
    assert response.status_code == 303 and response.headers["Location"].startswith("/system/login")
    assert failed in get_queue("default").failed_job_registry


def test_the_summary_of_arguments_is_short_and_hides_secret_keywords():
    summary = queue_service.args_summary(("x" * 500, 42), {"api_token": "hunter2", "attempt": 3})
    assert len(summary) <= queue_service.ARGS_SUMMARY_LENGTH and summary.endswith("…")
    assert "hunter2" not in queue_service.args_summary((1,), {"api_token": "hunter2", "Password": "x"})
    assert queue_service.args_summary((1,), {"api_token": "hunter2"}) == "1, api_token=…"
    assert queue_service.last_line("Traceback (most recent call last):\n  File \"x\"\nKeyError: 'a'\n\n") == \
        "KeyError: 'a'"
    assert queue_service.last_line(None) == ""
