"""Sign-in throttling in Redis: failures per e-mail address and per client address.

Counted the same whether or not the address belongs to someone, so the answer never tells an
attacker which accounts exist. When Redis does not answer, sign-in fails closed.
"""

from __future__ import annotations

import math
import time

import redis
from flask import current_app
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from app.errors import ServiceUnavailable, TooManyRequests
from app.extensions import get_redis

TOO_MANY = "Too many sign-in attempts. Try again in {minutes} minute{s}."


def _limiter() -> MovingWindowRateLimiter:
    limiter = current_app.extensions.get("opsdesk_signin_limiter")
    if limiter is None:
        storage = RedisStorage("redis://", connection_pool=get_redis().connection_pool,
                               key_prefix=f"{current_app.config['REDIS_KEY_PREFIX']}:signin")
        limiter = current_app.extensions["opsdesk_signin_limiter"] = MovingWindowRateLimiter(storage)
    return limiter


def _limits():
    window = current_app.config["LOGIN_WINDOW_SECONDS"]
    return (RateLimitItemPerSecond(current_app.config["LOGIN_MAX_FAILURES"], window),
            RateLimitItemPerSecond(current_app.config["LOGIN_MAX_FAILURES_PER_IP"], window))


def _keys(realm: str, email: str, ip: str | None) -> tuple[str, str]:
    return f"{realm}:email:{email.strip().lower()}", f"{realm}:ip:{ip or 'unknown'}"


def check(*, realm: str, email: str, ip: str | None) -> None:
    """Refuse before checking the password when either counter is exhausted."""
    per_email, per_ip = _limits()
    email_key, ip_key = _keys(realm, email, ip)
    try:
        limiter = _limiter()
        for item, key in ((per_email, email_key), (per_ip, ip_key)):
            if not limiter.test(item, key):
                reset_at = limiter.get_window_stats(item, key).reset_time
                minutes = max(1, math.ceil((reset_at - time.time()) / 60))
                raise TooManyRequests(TOO_MANY.format(minutes=minutes, s="" if minutes == 1 else "s"),
                                      retry_after=minutes * 60)
    except redis.RedisError:
        raise ServiceUnavailable("Sign-in is unavailable right now; try again in a moment.") from None


def record_failure(*, realm: str, email: str, ip: str | None) -> None:
    per_email, per_ip = _limits()
    email_key, ip_key = _keys(realm, email, ip)
    try:
        _limiter().hit(per_email, email_key)
        _limiter().hit(per_ip, ip_key)
    except redis.RedisError:
        raise ServiceUnavailable("Sign-in is unavailable right now; try again in a moment.") from None


def clear(*, realm: str, email: str) -> None:
    per_email, _ = _limits()
    email_key, _ = _keys(realm, email, None)
    try:
        _limiter().clear(per_email, email_key)
    except redis.RedisError:
        pass
