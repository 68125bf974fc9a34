"""The audit trail: same-transaction writes, immutability, the hash chain and its verification."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.actors import Actor
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.extensions import db
from app.workspaces import service as workspaces
from app.workspaces.models import Tenant
from tests.factories import make_workspace


def chain_of(workspace_id: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
                                   .order_by(AuditEvent.chain_seq)))


def test_events_are_chained_per_workspace(app_ctx):
    first, second = make_workspace(), make_workspace()
    actor = Actor.system("test")
    for workspace in (first, second, first):
        audit.record(actor=actor, action="update", ref_type="thing", ref_id=1, workspace_id=workspace.id)
        db.session.commit()
    chain = chain_of(first.id)
    assert [e.chain_seq for e in chain] == [1, 2]
    assert chain[0].prev_hash == "0" * 64 and chain[1].prev_hash == chain[0].row_hash
    assert chain_of(second.id)[0].chain_seq == 1
    assert audit.verify_chain(workspace_id=first.id).intact


def test_audit_row_rolls_back_with_the_change(app_ctx, world):
    audit.record(actor=world.actor(), action="update", ref_type="thing", workspace_id=world.workspace.id)
    db.session.rollback()
    assert chain_of(world.workspace.id) == []


def test_failed_audit_write_halts_the_change(app_ctx, world):
    """An audit row the database refuses takes the change down with it (halt on audit failure)."""
    actor = Actor(kind="user", id=world.users["workspace_admin"].id, label="x" * 300,
                  workspace_id=world.workspace.id, role="workspace_admin")
    with pytest.raises(DBAPIError):
        workspaces.create_tenant(actor=actor, slug="never-created", name="Never")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Tenant).where(Tenant.slug == "never-created")) == 0


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET action = 'read' WHERE workspace_id = :ws",
    "DELETE FROM audit_events WHERE workspace_id = :ws",
    "TRUNCATE audit_events",
    "UPDATE audit_events SET action = 'read' WHERE false",
])
def test_the_database_refuses_to_change_audit_rows(app_ctx, world, statement):
    audit.record(actor=world.actor(), action="update", ref_type="thing", workspace_id=world.workspace.id)
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement), {"ws": world.workspace.id})
    db.session.rollback()
    assert len(chain_of(world.workspace.id)) == 1


def _tamper(sql: str, params: dict) -> None:
    """Change an audit row the way an attacker with table-owner rights would: triggers off."""
    db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
    db.session.execute(text(sql), params)
    db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))
    db.session.commit()


def _five_events(workspace_id: int) -> list[AuditEvent]:
    for n in range(5):
        audit.record(actor=Actor.system("test"), action="update", ref_type="thing", ref_id=n,
                     workspace_id=workspace_id, field_deltas={"n": [n, n + 1]})
        db.session.commit()
    return chain_of(workspace_id)


def test_verify_names_an_altered_row(app_ctx):
    workspace = make_workspace()
    events = _five_events(workspace.id)
    _tamper("UPDATE audit_events SET field_deltas = '{\"n\": [0, 99]}' WHERE id = :id", {"id": events[2].id})
    report = audit.verify_chain(workspace_id=workspace.id)
    assert not report.intact
    assert (report.breaks[0].event_id, report.breaks[0].reason) == (events[2].id, "event altered after it was written")
    everything = audit.verify_chain()
    assert events[2].id in {b.event_id for b in everything.breaks}


def test_verify_finds_a_rehashed_row_by_the_next_link(app_ctx):
    workspace = make_workspace()
    events = _five_events(workspace.id)
    _tamper("""UPDATE audit_events e SET action = 'read', row_hash = audit_event_digest(
                   (SELECT x FROM (SELECT (e2.*)::audit_events AS x FROM audit_events e2 WHERE e2.id = :id) s))
               WHERE id = :id""", {"id": events[1].id})
    # the forger recomputed row 2's own hash with the old action; row 3 still points at the old hash
    breaks = audit.verify_chain(workspace_id=workspace.id).breaks
    assert breaks and breaks[0].event_id in {events[1].id, events[2].id}


def test_verify_finds_deleted_rows(app_ctx):
    workspace = make_workspace()
    events = _five_events(workspace.id)
    _tamper("DELETE FROM audit_events WHERE id = :id", {"id": events[3].id})
    brk = audit.verify_chain(workspace_id=workspace.id).breaks[0]
    assert brk.event_id == events[4].id and brk.reason == "events missing before this one"


def test_concurrent_writers_keep_one_unbroken_chain(app):
    with app.app_context():
        workspace_id = make_workspace().id
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                for i in range(10):
                    audit.record(actor=Actor.system(f"writer-{n}"), action="update", ref_type="thing",
                                 ref_id=f"{n}-{i}", workspace_id=workspace_id)
                    db.session.commit()
                db.session.remove()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with app.app_context():
        chain = chain_of(workspace_id)
        assert [e.chain_seq for e in chain] == list(range(1, 81))
        assert audit.verify_chain(workspace_id=workspace_id).intact


def test_context_is_kept_minimal(app_ctx, world):
    event = audit.record(actor=world.actor(), action="update", ref_type="thing", workspace_id=world.workspace.id,
                         context={"password": "hunter2", "api_token": "abc", "note": "x" * 2000,
                                  "nested": {"secret": "s", "ok": 1}})
    db.session.commit()
    assert "password" not in event.context and "api_token" not in event.context
    assert event.context["nested"] == {"ok": 1}
    assert len(event.context["note"]) <= 501


def test_privileged_classification():
    assert audit.is_privileged("update", "membership")
    assert audit.is_privileged("break_glass", "platform_user")
    assert audit.is_privileged("platform.ops.runbooks.start", "operation_run")
    assert audit.is_privileged("approve", "change_request")
    assert not audit.is_privileged("update", "incident")
    assert not audit.is_privileged("login", "user")


def test_retroactive_time_is_kept_but_future_time_is_not(app_ctx, world):
    from datetime import UTC, datetime, timedelta

    past = datetime.now(UTC) - timedelta(days=3)
    future = datetime.now(UTC) + timedelta(days=3)
    old = audit.record(actor=world.actor(), action="update", ref_type="t", workspace_id=world.workspace.id,
                       occurred_at=past)
    new = audit.record(actor=world.actor(), action="update", ref_type="t", workspace_id=world.workspace.id,
                       occurred_at=future)
    db.session.commit()
    db.session.refresh(old)
    db.session.refresh(new)
    assert abs((old.occurred_at - past).total_seconds()) < 0.001
    assert new.occurred_at < datetime.now(UTC) + timedelta(seconds=1)
    assert audit.verify_chain(workspace_id=world.workspace.id).intact
