"""Error pages: full pages for navigation, alert fragments for HTMX, JSON for the API."""

from __future__ import annotations

from tests.conftest import html_has_no_layout


def test_404_is_a_full_page(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "<html" in body and "Not found" in body


def test_404_for_htmx_is_an_alert_fragment_aimed_at_the_message_area(client):
    response = client.get("/nothing-here", htmx=True)
    assert response.status_code == 404
    assert html_has_no_layout(response.get_data(as_text=True))
    assert response.headers["HX-Retarget"] == "#messages" and response.headers["HX-Reswap"] == "afterbegin"
    assert 'role="alert"' in response.get_data(as_text=True)


def test_403_page_and_fragment(client, world):
    client.login(world.email("resolver"))
    page = client.get("/audit")
    assert page.status_code == 403 and "<html" in page.get_data(as_text=True)
    fragment = client.get("/audit", htmx=True)
    assert fragment.status_code == 403 and html_has_no_layout(fragment.get_data(as_text=True))
    assert "Not allowed" in fragment.get_data(as_text=True)


def test_api_errors_are_json(client):
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.get_json() == {"error": {"code": "not_found",
                                             "message": "There is nothing here, or it is outside your access."}}
    assert client.raw.get("/api/v1/auth/tokens").get_json()["error"]["code"] == "method_not_allowed"


def test_500_page_fragment_and_json(make_app):
    application = make_app()

    @application.get("/boom")
    def boom():
        raise RuntimeError("secret stack detail")

    @application.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("secret stack detail")

    from tests.http import SessionClient

    client = SessionClient(application.test_client())
    page = client.get("/boom")
    assert page.status_code == 500 and "<html" in page.get_data(as_text=True)
    assert "secret stack detail" not in page.get_data(as_text=True)
    fragment = client.get("/boom", htmx=True)
    assert fragment.status_code == 500 and html_has_no_layout(fragment.get_data(as_text=True))
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal_error"
    assert "secret" not in api.get_data(as_text=True)
