"""The OperationRun contract: summary_counts keys enforced in one place (and by the database),
failure messages sanitized with stable reason codes, and the catalog's shape."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.runbooks import summary
from app.runbooks.catalog import ALL_TENANTS, RUNBOOKS, SINGLE_TENANT
from app.runbooks.sanitize import (
    FAILURE_LIMIT,
    MESSAGE_LIMIT,
    REASON_CODES,
    classify,
    failure_entry,
    sanitize_message,
)
from tests.runbooks.helpers import start


def test_summary_keys_are_the_six_of_the_seed():
    assert summary.SUMMARY_KEYS == ("total", "processed", "updated", "skipped", "failed", "tenants")
    assert summary.initial(total=5) == {"total": 5, "processed": 0, "updated": 0, "skipped": 0, "failed": 0,
                                        "tenants": 0}
    with pytest.raises(ValueError, match="rows"):
        summary.checked({"rows": 1})
    with pytest.raises(ValueError):
        summary.checked({"total": "12"})
    with pytest.raises(ValueError):
        summary.increment(1, deleted=3)


def test_the_database_refuses_other_summary_keys(app, app_ctx, world):
    _, started = start(world, "incidents.sla.recompute", tenant=world.tenant_a)
    summary.increment(started.run.id, processed=3, updated=1)
    db.session.commit()
    assert db.session.scalar(text("SELECT summary_counts FROM operation_runs WHERE id = :id"),
                             {"id": started.run.id})["processed"] == 3
    for bad in ('{"rows": 1}', '{"total": "many"}', '[]'):
        with pytest.raises(IntegrityError):
            db.session.execute(text("UPDATE operation_runs SET summary_counts = CAST(:bad AS jsonb) WHERE id = :id"),
                               {"bad": bad, "id": started.run.id})
        db.session.rollback()


@pytest.mark.parametrize("raw, leaked", [
    ("connect to postgresql://opsdesk:s3cr3t-pw@db.internal:5432/opsdesk failed", "s3cr3t-pw"),
    ("request failed: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJhbGci"),
    ("bad login password=hunter2 for user", "hunter2"),
    ("api_key: 'abcd1234efgh5678'", "abcd1234efgh5678"),
    ("webhook secret=whsec_0123456789abcdef0123456789abcdef rejected", "whsec_0123"),
    ("mail to jane.doe@customer.example bounced", "jane.doe@customer.example"),
    ("Traceback (most recent call last):\n  File \"/srv/opsdesk/app/x.py\", line 9, in run\n"
     "ValueError: bad value", "/srv/opsdesk"),
])
def test_failure_messages_leak_no_secret_no_path_no_trace(raw, leaked):
    clean = sanitize_message(raw)
    assert leaked not in clean and "Traceback" not in clean and "\n" not in clean
    assert clean  # something useful is left


def test_failure_messages_are_bounded_and_coded():
    entry = failure_entry("runbook.error", "x" * 5000, tenant_id=7)
    assert len(entry["message"]) <= MESSAGE_LIMIT and entry["tenant_id"] == 7
    assert failure_entry("worker.lost")["message"] == REASON_CODES["worker.lost"]
    with pytest.raises(ValueError):
        failure_entry("made.up")
    assert FAILURE_LIMIT == 50


def test_exceptions_map_to_stable_reason_codes():
    from psycopg import OperationalError as DriverOperationalError
    from redis.exceptions import ConnectionError as RedisDown
    from rq.timeouts import JobTimeoutException
    from sqlalchemy.exc import OperationalError

    assert classify(JobTimeoutException("took 3600s"))[0] == "job.timeout"
    assert classify(RedisDown("Error 111 connecting to cache.internal:6379"))[0] == "queue.unavailable"
    down = OperationalError("SELECT 1", {}, DriverOperationalError("server closed the connection"))
    assert classify(down) == ("database.unavailable", REASON_CODES["database.unavailable"])
    code, message = classify(RuntimeError("token=abc123 went wrong"))
    assert code == "runbook.error" and "abc123" not in message and message.startswith("RuntimeError")


def test_the_catalog_describes_each_runbook():
    for runbook in RUNBOOKS.values():
        assert runbook.label and runbook.description and runbook.estimated_duration
        assert runbook.capability.startswith("system.runbooks.")
        assert set(runbook.scopes) <= {SINGLE_TENANT, ALL_TENANTS} and runbook.scopes
    assert RUNBOOKS["audit.chain.verify"].read_only and RUNBOOKS["audit.chain.verify"].scopes == (ALL_TENANTS,)
