"""The members page: filter, page, add, change, remove, through HTTP."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.workspaces.models import Membership, Tenant
from tests.conftest import html_has_no_layout
from tests.factories import make_user


def test_members_list_filters_as_you_type(client, world):
    client.login(world.email("workspace_admin"))
    page = client.get("/workspace/members")
    assert world.email("auditor") in page.get_data(as_text=True)
    fragment = client.get(f"/workspace/members?q={world.users['auditor'].slug}", htmx=True,
                          headers={"HX-Target": "results"})
    body = fragment.get_data(as_text=True)
    assert html_has_no_layout(body) and world.email("auditor") in body and world.email("resolver") not in body


def test_members_filter_by_role_and_page(client, world):
    for _ in range(55):
        make_user(world.workspace, "end_user")
    client.login(world.email("workspace_admin"))
    first = client.get("/workspace/members?role=end_user").get_data(as_text=True)
    assert first.count('id="member-') == 50 and 'rel="next"' in first
    import re

    next_url = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).get_data(as_text=True)
    assert second.count('id="member-') == 6  # 55 new + the world's end user


def test_add_member_form_shows_errors_inline(client, world):
    client.login(world.email("workspace_admin"))
    response = client.post("/workspace/members", {"email": "someone-new@example.test", "role": "resolver"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "A new person needs a name." in body and "Use at least 10 characters." in body


def test_add_and_change_and_remove(client, world):
    client.login(world.email("workspace_admin"))
    response = client.post("/workspace/members", {"email": "kim@example.test", "name": "Kim", "role": "resolver",
                                                  "password": "a long password", "tenant_ids": world.tenant_a.id})
    assert response.status_code == 303
    membership = db.session.scalar(select(Membership).join(Membership.user).where(
        Membership.workspace_id == world.workspace.id, Membership.role == "resolver",
        Membership.id != db.session.scalar(select(Membership.id).where(
            Membership.user_id == world.users["resolver"].id))))
    assert membership.tenant_ids == (world.tenant_a.id,)
    assert client.post(f"/workspace/members/{membership.id}", {"role": "auditor"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Membership, membership.id).role == "auditor"
    assert client.post(f"/workspace/members/{membership.id}/remove").status_code == 303
    assert db.session.scalar(select(Membership.id).where(Membership.id == membership.id)) is None


def test_managers_see_members_but_cannot_change_them(client, world):
    client.login(world.email("incident_manager"))
    assert client.get("/workspace/members").status_code == 200
    target = db.session.scalar(select(Membership).where(Membership.user_id == world.users["resolver"].id))
    assert client.post(f"/workspace/members/{target.id}", {"role": "auditor"}).status_code == 403


def test_tenants_page_adds_a_tenant(client, world):
    client.login(world.email("workspace_admin"))
    assert client.post("/workspace/tenants", {"name": "Hooli", "slug": "hooli"}).status_code == 303
    assert db.session.scalar(select(Tenant).where(Tenant.workspace_id == world.workspace.id,
                                                  Tenant.slug == "hooli")) is not None
    refused = client.post("/workspace/tenants", {"name": "Hooli", "slug": "hooli"})
    assert refused.status_code == 422 and "Already in use" in refused.get_data(as_text=True)


def test_role_change_takes_effect_on_the_next_request(client, make_client, world):
    client.login(world.email("auditor"))
    assert client.get("/audit").status_code == 200
    admin = make_client()
    admin.login(world.email("workspace_admin"))
    target = db.session.scalar(select(Membership).where(Membership.user_id == world.users["auditor"].id))
    admin.post(f"/workspace/members/{target.id}", {"role": "end_user"})
    assert client.get("/audit").status_code == 403


def test_tenant_switch_returns_to_the_page_it_was_made_on(client, world):
    client.login(world.email("auditor"))
    page = client.get("/audit?action=update").get_data(as_text=True)
    assert f'<option value="{world.tenant_b.id}" selected>' not in page
    response = client.post("/switch", {"workspace_id": world.workspace.id, "tenant_id": world.tenant_b.id},
                           headers={"Referer": "http://localhost/audit?action=update"})
    assert response.status_code == 303 and response.headers["Location"] == "/audit?action=update"
    # the switcher (made once per person and session) shows the new choice on the next page
    page = client.get("/audit?action=update").get_data(as_text=True)
    assert f'<option value="{world.tenant_b.id}" selected>' in page
    # a page of another site is no place to go back to
    response = client.post("/switch", {"workspace_id": world.workspace.id, "tenant_id": ""},
                           headers={"Referer": "https://elsewhere.example/audit"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert f'<option value="{world.tenant_b.id}" selected>' not in page
