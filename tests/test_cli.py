"""The CLI commands of spec §11: demo load, users create, audit verify (tokens: tests/api)."""

from __future__ import annotations

import json

from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.auth.models import PlatformUser, User
from app.extensions import db
from app.workspaces.models import Membership, Workspace


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_demo_load_is_idempotent(runner, app_ctx):
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    workspace = db.session.scalar(select(Workspace).where(Workspace.slug == "demo"))
    roles = set(db.session.scalars(select(Membership.role).where(Membership.workspace_id == workspace.id)))
    assert {"end_user", "service_desk_analyst", "resolver", "service_desk_manager", "incident_manager",
            "change_manager", "auditor", "workspace_admin"} <= roles
    assert db.session.scalar(select(User).where(User.email == "incident_manager@demo.test")) is not None
    assert {p.role for p in db.session.scalars(select(PlatformUser).where(
        PlatformUser.email.in_(["operator@demo.test", "platform-admin@demo.test"])))} == \
        {"platform_operator", "platform_admin"}
    events, users = count(AuditEvent), count(User)
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0
    assert (count(AuditEvent), count(User)) == (events, users)
    assert json.loads(second.output)["users"]["auditor@demo.test"] == "present"


def test_demo_users_sign_in_with_the_demo_password(runner, client):
    runner.invoke(args=["demo", "load"])
    assert client.login("service_desk_analyst@demo.test", "demo-password").status_code == 303
    assert client.get("/").status_code == 200


def test_users_create_console_and_platform(runner, world):
    result = runner.invoke(args=["users", "create", "--email", "cli-made@example.test", "--password",
                                 "a long enough password", "--workspace", world.workspace.slug, "--role", "auditor",
                                 "--tenant", world.tenant_a.slug])
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    assert made["role"] == "auditor" and made["tenants"] == [world.tenant_a.slug]
    result = runner.invoke(args=["users", "create", "--email", "ops-cli@example.test", "--password",
                                 "a long enough password", "--platform-role", "platform_admin"])
    assert result.exit_code == 0 and json.loads(result.output)["platform_role"] == "platform_admin"


def test_users_create_refuses_bad_input_and_writes_nothing(runner, world):
    before = (count(User), count(AuditEvent))
    bad = [
        ["--email", "x@example.test", "--password", "short", "--workspace", world.workspace.slug, "--role", "auditor"],
        ["--email", "x@example.test", "--password", "long enough pass", "--workspace", "no-such-ws", "--role",
         "auditor"],
        ["--email", "x@example.test", "--password", "long enough pass", "--workspace", world.workspace.slug,
         "--role", "emperor"],
        ["--email", "x@example.test", "--password", "long enough pass", "--workspace", world.workspace.slug,
         "--role", "auditor", "--tenant", "not-a-tenant"],
        ["--email", "x@example.test", "--password", "long enough pass"],
        ["--email", "x@example.test", "--password", "long enough pass", "--platform-role", "root"],
        ["--email", world.email("auditor"), "--password", "long enough pass", "--workspace", world.workspace.slug,
         "--role", "auditor"],
    ]
    for args in bad:
        result = runner.invoke(args=["users", "create", *args])
        assert result.exit_code != 0, args
        assert result.output.strip(), "a refused command says why"
    assert (count(User), count(AuditEvent)) == before


def test_audit_verify_passes_then_names_the_broken_row(runner, world):
    from app.audit import service as audit

    for n in range(3):
        audit.record(actor=world.actor(), action="update", ref_type="thing", ref_id=n)
    db.session.commit()
    ok = runner.invoke(args=["audit", "verify", "--workspace", world.workspace.slug])
    assert ok.exit_code == 0 and "intact" in ok.output
    victim = db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == world.workspace.id)
                                .order_by(AuditEvent.chain_seq.desc())).first()
    db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
    db.session.execute(text("UPDATE audit_events SET actor_label = 'someone-else' WHERE id = :id"), {"id": victim.id})
    db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))
    db.session.commit()
    broken = runner.invoke(args=["audit", "verify", "--workspace", world.workspace.slug])
    assert broken.exit_code == 1
    assert f"event id {victim.id}" in broken.output and "altered" in broken.output
