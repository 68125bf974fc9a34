"""API tokens: issue, revoke (Redis denylist), and every way a token must be refused."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db
from tests.factories import PASSWORD
from tests.http import SessionClient


def issue(client, email, password=PASSWORD, **extra):
    return client.raw.post("/api/v1/auth/tokens", json={"email": email, "password": password, **extra})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def revoke(client, token: str):
    return client.raw.delete("/api/v1/auth/tokens/current", headers=bearer(token))


def test_issue_and_revoke(app, client, world):
    response = issue(client, world.email("service_desk_analyst"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == app.config["API_TOKEN_TTL_SECONDS"]
    claims = jwt.decode(body["access_token"], app.config["JWT_SECRET_KEY"], algorithms=["HS256"],
                        issuer="opsdesk")
    assert {"exp", "iat", "jti", "sub"} <= set(claims)
    assert claims["sub"] == world.users["service_desk_analyst"].slug
    assert revoke(client, body["access_token"]).status_code == 204
    again = revoke(client, body["access_token"])
    assert again.status_code == 401
    assert again.get_json()["error"] == {"code": "unauthorized", "message": "The token has been revoked."}


def test_revoked_jti_lives_in_redis_for_the_tokens_remaining_life(app, client, world):
    token = issue(client, world.email("auditor")).get_json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    revoke(client, token)
    redis = app.extensions["opsdesk_redis"]
    ttl = redis.ttl(f"{app.config['REDIS_KEY_PREFIX']}:jwt:denylist:{claims['jti']}")
    assert claims["exp"] - time.time() - 5 <= ttl <= claims["exp"] - time.time() + 1


def test_wrong_password_is_401_json_and_audited(client, world):
    response = issue(client, world.email("auditor"), "not the password")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.ref_type == "api_token",
                                                        AuditEvent.actor_label == world.email("auditor"))).one()
    assert event.context["outcome"] == "failed"


@pytest.mark.parametrize("payload, status, fields", [
    ({"email": "a@b.test"}, 422, {"password": "required"}),
    ({"email": "a@b.test", "password": "x", "scope": "admin"}, 422, {"scope": "unknown field"}),
    ({"email": 7, "password": "x"}, 422, {"email": "must be a non-empty string"}),
])
def test_bad_bodies_are_refused_with_field_names(client, payload, status, fields):
    response = client.raw.post("/api/v1/auth/tokens", json=payload)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == "invalid_fields" and error["fields"] == fields


def test_malformed_json_is_400(client):
    response = client.raw.post("/api/v1/auth/tokens", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
    response = client.raw.post("/api/v1/auth/tokens", data="email=a", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_missing_or_garbled_authorization_is_401(client):
    assert client.raw.delete("/api/v1/auth/tokens/current").status_code == 401
    assert client.raw.delete("/api/v1/auth/tokens/current", headers={"Authorization": "Basic abc"}).status_code == 401
    response = client.raw.delete("/api/v1/auth/tokens/current", headers=bearer("not.a.jwt"))
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def forged(app, world, *, algorithm="HS256", key=None, drop=(), **overrides):
    now = int(time.time())
    claims = {"sub": world.users["auditor"].slug, "iat": now, "nbf": now, "exp": now + 600,
              "jti": uuid.uuid4().hex, "iss": "opsdesk", "ws": world.workspace.id, "kind": "user"}
    claims.update(overrides)
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, key if key is not None else app.config["JWT_SECRET_KEY"], algorithm=algorithm)


def test_a_correctly_signed_token_is_accepted(app, client, world):
    assert revoke(client, forged(app, world)).status_code == 204


def test_expired_token_is_refused(app, client, world):
    token = forged(app, world, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200,
                   exp=int(time.time()) - 3600)
    response = revoke(client, token)
    assert response.status_code == 401 and "expired" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_with_the_same_key_are_refused(app, client, world, algorithm):
    assert revoke(client, forged(app, world, algorithm=algorithm)).status_code == 401


def test_alg_none_is_refused(app, client, world):
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    good = forged(app, world)
    payload = good.split(".")[1]
    assert revoke(client, f"{header}.{payload}.").status_code == 401


def test_wrong_key_is_refused(app, client, world):
    assert revoke(client, forged(app, world, key="another-secret-entirely-0123456789-0123456789abcdef0123456789")).status_code == 401


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "sub"])
def test_tokens_missing_a_required_claim_are_refused(app, client, world, claim):
    assert revoke(client, forged(app, world, drop=(claim,))).status_code == 401


def test_removed_member_loses_api_access_at_once(app, client, world):
    from app.workspaces.models import Membership

    token = issue(client, world.email("change_manager")).get_json()["access_token"]
    db.session.execute(Membership.__table__.delete().where(
        Membership.user_id == world.users["change_manager"].id))
    db.session.commit()
    assert revoke(client, token).status_code == 401


def test_requests_fail_closed_when_redis_is_down(app_with_redis, private_redis, world):
    client = SessionClient(app_with_redis.test_client())
    token = issue(client, world.email("auditor")).get_json()["access_token"]
    private_redis.stop()
    response = revoke(client, token)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"


def test_service_account_token_from_the_cli(runner, client, world):
    import json

    result = runner.invoke(args=["tokens", "issue", "--service-account", "alert-bridge", "--workspace",
                                 world.workspace.slug, "--role", "service_desk_analyst", "--ttl", "600"])
    assert result.exit_code == 0, result.output
    issued = json.loads(result.output)
    assert issued["sub"] == "svc:alert-bridge" and issued["expires_in"] == 600
    assert revoke(client, issued["access_token"]).status_code == 204


def test_cli_refuses_unknown_role_and_writes_nothing(runner, world):
    from app.auth.models import ServiceAccount

    result = runner.invoke(args=["tokens", "issue", "--service-account", "x-bridge", "--workspace",
                                 world.workspace.slug, "--role", "overlord"])
    assert result.exit_code == 1 and "Unknown role" in result.output
    assert db.session.scalar(select(ServiceAccount).where(ServiceAccount.name == "x-bridge")) is None


def test_denylist_size_metric_counts_revoked_unexpired_tokens(client, world):
    import re

    def gauge() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        return float(re.search(r"^mlplatform_redis_denylist_size (\S+)$", text, re.M).group(1))

    before = gauge()
    for _ in range(2):
        revoke(client, issue(client, world.email("auditor")).get_json()["access_token"])
    assert gauge() == before + 2
