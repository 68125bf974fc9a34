"""Members and tenants: the rules, tested without HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from app.extensions import db
from app.workspaces import service
from app.workspaces.models import Membership


def membership_of(world, role) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.user_id == world.users[role].id))


def test_add_a_new_person_limited_to_a_tenant(app_ctx, world):
    membership = service.add_member(actor=world.actor(), email="New.Person@Example.test", name="New Person",
                                    role="resolver", tenant_ids=[world.tenant_a.id], password="a long password")
    assert membership.tenant_ids == (world.tenant_a.id,)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.ref_type == "membership",
                                                        AuditEvent.ref_id == str(membership.id))).one()
    assert event.is_privileged and event.field_deltas["role"] == [None, "resolver"]


def test_add_refuses_bad_input_and_writes_nothing(app_ctx, world):
    before = db.session.scalar(select(db.func.count()).select_from(AuditEvent))
    with pytest.raises(ValidationFailed) as refused:
        service.add_member(actor=world.actor(), email="not-an-address", name="", role="wizard", tenant_ids=[],
                           password="short")
    assert "email" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        service.add_member(actor=world.actor(), email="fresh@example.test", name="", role="resolver",
                           tenant_ids=[], password="short")
    assert set(refused.value.fields) == {"name", "password"}
    db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(AuditEvent)) == before


def test_existing_member_cannot_be_added_twice(app_ctx, world):
    with pytest.raises(ValidationFailed, match="already a member"):
        service.add_member(actor=world.actor(), email=world.email("auditor"), name=None, role="auditor",
                           tenant_ids=[], password=None)


def test_role_change_is_audited_with_deltas(app_ctx, world):
    target = membership_of(world, "resolver")
    service.change_member(actor=world.actor(), membership_id=target.id, role="incident_manager",
                          tenant_ids=[world.tenant_b.id])
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.ref_id == str(target.id),
                                                        AuditEvent.action == "update")).one()
    assert event.field_deltas == {"role": ["resolver", "incident_manager"], "tenant_ids": ["all", [world.tenant_b.id]]}
    assert event.is_privileged


def test_the_last_admin_stays(app_ctx, world):
    admin = membership_of(world, "workspace_admin")
    with pytest.raises(Conflict, match="last admin"):
        service.change_member(actor=world.actor(), membership_id=admin.id, role="auditor", tenant_ids=[])
    with pytest.raises(Conflict):
        service.remove_member(actor=world.actor("workspace_admin"), membership_id=admin.id)


def test_only_admins_manage_members(app_ctx, world):
    with pytest.raises(NotAllowed):
        service.change_member(actor=world.actor("incident_manager"),
                              membership_id=membership_of(world, "resolver").id, role="auditor", tenant_ids=[])


def test_remove_member(app_ctx, world):
    target = membership_of(world, "end_user")
    service.remove_member(actor=world.actor(), membership_id=target.id)
    assert db.session.scalar(select(Membership.id).where(Membership.id == target.id)) is None
    with pytest.raises(NotFound):
        service.remove_member(actor=world.actor(), membership_id=target.id)


def test_tenant_slugs_are_checked_and_unique(app_ctx, world):
    tenant = service.create_tenant(actor=world.actor(), slug="umbrella", name="Umbrella Corp")
    assert tenant.workspace_id == world.workspace.id
    with pytest.raises(ValidationFailed):
        service.create_tenant(actor=world.actor(), slug="umbrella", name="Again")
    with pytest.raises(ValidationFailed):
        service.create_tenant(actor=world.actor(), slug="Bad Slug!", name="X")
