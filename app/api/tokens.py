"""API tokens: HS256 JWTs with exp, iat, jti and sub, and a Redis denylist of revoked jtis.

Only one algorithm is accepted, so a token signed with anything else (or `none`) is refused.
The denylist keeps each revoked jti exactly as long as the token would have lived; checking it
needs Redis, and when Redis does not answer the request fails closed (503), never open.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
import redis
from flask import current_app

from app.errors import ServiceUnavailable, Unauthenticated
from app.extensions import get_redis, redis_key

ALGORITHM = "HS256"
ISSUER = "opsdesk"
REQUIRED_CLAIMS = ["exp", "iat", "jti", "sub"]


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    jti: str
    exp: int
    iat: int
    workspace_id: int
    kind: str  # "user" | "service_account"
    user_id: int | None = None  # for user tokens: lets the request reuse the cached profile


def issue_token(*, sub: str, workspace_id: int, kind: str, ttl_seconds: int,
                user_id: int | None = None) -> tuple[str, int]:
    """A signed token for `sub` in one workspace; returns (token, expires_in)."""
    issued_at = int(time.time())
    claims = {"sub": sub, "iat": issued_at, "nbf": issued_at, "exp": issued_at + ttl_seconds,
              "jti": uuid.uuid4().hex, "iss": ISSUER, "ws": workspace_id, "kind": kind}
    if user_id is not None:
        claims["uid"] = user_id
    return jwt.encode(claims, current_app.config["JWT_SECRET_KEY"], algorithm=ALGORITHM), ttl_seconds


def decode_token(token: str, *, check_revoked: bool = True) -> TokenClaims:
    """Verify signature, algorithm, expiry and required claims, then (unless the caller checks it
    together with other Redis reads) the denylist."""
    try:
        claims = jwt.decode(token, current_app.config["JWT_SECRET_KEY"], algorithms=[ALGORITHM],
                            issuer=ISSUER, options={"require": REQUIRED_CLAIMS + ["iss"]}, leeway=5)
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The token has expired; request a new one.") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("The token is not valid.") from None
    try:
        parsed = TokenClaims(sub=str(claims["sub"]), jti=str(claims["jti"]), exp=int(claims["exp"]),
                             iat=int(claims["iat"]), workspace_id=int(claims["ws"]), kind=str(claims["kind"]),
                             user_id=int(claims["uid"]) if "uid" in claims else None)
    except (KeyError, TypeError, ValueError):
        raise Unauthenticated("The token is not valid.") from None
    if check_revoked and is_revoked(parsed.jti):
        raise Unauthenticated("The token has been revoked.")
    return parsed


def denylist_key(jti: str) -> str:
    return _denylist_entry(jti)


def _denylist_entry(jti: str) -> str:
    return redis_key("jwt", "denylist", jti)


def _denylist_index() -> str:
    return redis_key("jwt", "denylist")


def is_revoked(jti: str) -> bool:
    try:
        return bool(get_redis().exists(_denylist_entry(jti)))
    except redis.RedisError:
        raise ServiceUnavailable("Token revocation cannot be checked right now (Redis is not answering).") from None


def revoke(claims: TokenClaims) -> None:
    """Denylist the token's jti until the moment it would have expired anyway."""
    remaining = max(1, claims.exp - int(time.time()))
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.set(_denylist_entry(claims.jti), "1", ex=remaining)
        pipe.zadd(_denylist_index(), {claims.jti: claims.exp})
        pipe.execute()
    except redis.RedisError:
        raise ServiceUnavailable("The token cannot be revoked right now (Redis is not answering).") from None


def denylist_size() -> int:
    """Revoked tokens that have not expired yet (expired ones are pruned from the index first)."""
    client = get_redis()
    pipe = client.pipeline(transaction=True)
    pipe.zremrangebyscore(_denylist_index(), "-inf", int(time.time()))
    pipe.zcard(_denylist_index())
    return int(pipe.execute()[1])
