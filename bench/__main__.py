"""`python -m bench`: start Opsdesk under gunicorn on the configured PostgreSQL and Redis, load
the data, and measure each scenario against its baseline in the same run.

    python -m bench                      # all scenarios
    python -m bench --seconds 20         # longer measurement windows
    python -m bench --fresh              # rebuild the benchmark database

With DATABASE_URL/REDIS_URL unset it uses the embedded servers under instance/bench-services.
The benchmark database (`opsdesk_bench`) is kept between runs; seeding 1,000,000 audit rows
takes a minute or two the first time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench import seed
from bench.load import LoadResult, run_load

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "opsdesk_bench"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def servers() -> tuple[str, str]:
    database, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database and redis_url:
        return database, redis_url
    from app.embedded import start_embedded

    services = start_embedded(ROOT / "instance" / "bench-services")
    return services.database_url, services.redis_url


def bench_database(base_url: str, fresh: bool) -> str:
    admin = make_url(base_url).set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{BENCH_DB}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return make_url(base_url).set(database=BENCH_DB).render_as_string(hide_password=False)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers",
         str(workers), "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("gunicorn did not start")


def sign_in(port: int, email: str, password: str) -> str:
    """A real browser sign-in (CSRF token and all); returns the session cookie header."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password}).encode()
    opener.open(f"http://127.0.0.1:{port}/login", data=body).read()
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert "opsdesk_session" in cookie
    return cookie


def describe(name: str, result: LoadResult) -> dict:
    return {"scenario": name, "requests_per_second": round(result.rps, 1), "p50_ms": round(result.p50_ms, 2),
            "p99_ms": round(result.p99_ms, 2), "requests": result.requests, "errors": result.errors,
            "statuses": result.statuses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per scenario")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 2) * 2, help="gunicorn processes")
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the benchmark database")
    args = parser.parse_args(argv)

    base_db, redis_url = servers()
    database_url = bench_database(base_db, args.fresh)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "SECRET_KEY": "opsdesk-benchmark-secret-not-for-production-0123456789",
           "OPSDESK_REDIS_PREFIX": "opsdesk-bench", "OPSDESK_QUEUE_PREFIX": "opsdesk-bench",
           "SESSION_COOKIE_SECURE": "false", "OPSDESK_LOGIN_MAX_FAILURES": "1000"}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "OPSDESK_REDIS_PREFIX")})
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    fixture = seed.ensure_audit_fixture(database_url, rows=args.audit_rows, log=log)

    port = free_port()
    log(f"gunicorn with {args.workers} workers on port {port}; {args.concurrency} connections, "
        f"{args.warmup:.0f}s warm-up + {args.seconds:.0f}s per scenario")
    server = start_gunicorn(env, port, args.workers)
    results = []
    try:
        cookie = sign_in(port, fixture.auditor_email, fixture.password)

        def measure(name: str, path: str, headers: dict | None = None) -> dict:
            result = run_load(host="127.0.0.1", port=port, path=path, headers=headers,
                              concurrency=args.concurrency, seconds=args.seconds, warmup=args.warmup)
            row = describe(name, result)
            results.append(row)
            log(f"{name:<44} {row['requests_per_second']:>8.1f} req/s  p50 {row['p50_ms']:>7.2f} ms  "
                f"p99 {row['p99_ms']:>7.2f} ms  errors {row['errors']}")
            if result.errors:
                log(f"  statuses: {result.statuses}")
            return row

        trivial = measure("trivial route (GET /healthz)", "/healthz")
        bare = measure("bare route: 50 audit rows, one keyset query",
                       f"/bench/bare/audit?workspace_id={fixture.workspace_id}&action=update")
        audit_view = measure("audit view (signed in, filtered, 50 rows)", "/audit?action=update",
                             {"Cookie": cookie})
    finally:
        server.terminate()
        server.wait(timeout=30)

    ratio = audit_view["requests_per_second"] / bare["requests_per_second"] if bare["requests_per_second"] else 0
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "audit_rows": fixture.audit_rows,
        "scenarios": results,
        "ratios": {
            "bare_vs_trivial": round(bare["requests_per_second"] / trivial["requests_per_second"], 3),
            "audit_view_vs_bare": round(ratio, 3),
        },
        "targets": {"audit_view_vs_bare": ">= 0.80"},
    }
    print()
    print(f"audit view / bare route: {ratio:.0%} of the bare route's requests/s "
          f"({'meets' if ratio >= 0.8 else 'MISSES'} the 80 % target); p99 {audit_view['p99_ms']:.1f} ms")
    print(f"bare route / trivial route: {summary['ratios']['bare_vs_trivial']:.0%}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
