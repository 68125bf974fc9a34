"""`python -m bench`: start Opsdesk under gunicorn on the configured PostgreSQL and Redis, load
the data, and measure each scenario against its baseline in the same run.

    python -m bench                      # everything: the HTTP scenarios, then the findings backfill
    python -m bench --only http          # the HTTP scenarios (board, audit view, API …)
    python -m bench --only backfill      # findings.lifecycle.backfill through RQ vs one SQL UPDATE
    python -m bench --seconds 20         # longer measurement windows
    python -m bench --fresh              # rebuild the benchmark databases

With DATABASE_URL/REDIS_URL unset it uses the embedded servers under instance/bench-services.
The benchmark databases (`opsdesk_bench`, `opsdesk_bench_findings_seed`) are kept between runs;
seeding 1,000,000 audit rows, 1,000,000 incidents and 1,000,000 findings takes a few minutes the
first time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench import seed
from bench.load import LoadResult, run_load, run_wrk

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


def choose_loader(name: str):
    """wrk if asked for or available (installing Debian's package when we may), else Python's."""
    if name == "python":
        return run_load
    if shutil.which("wrk") is None and name in ("auto", "wrk") and shutil.which("apt-get") and os.geteuid() == 0:
        log("installing Debian's wrk for the load (apt-get install wrk)")
        subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if shutil.which("wrk"):
        log("load generator: wrk")
        return run_wrk
    if name == "wrk":
        raise SystemExit("wrk is not installed")
    log("load generator: built-in Python client (wrk not available)")
    return run_load


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


def api_token(port: int, email: str, password: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/auth/tokens", method="POST",
                                     data=json.dumps({"email": email, "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request).read())["access_token"]


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    path: str
    headers: dict | None = None
    baseline: str | None = None  # key of the scenario this one is compared with


def run_rounds(port: int, scenarios: list[Scenario], args) -> list[dict]:
    """Run every scenario once per round, rounds interleaved, so a slow minute of the machine hits
    all of them alike; ratios are taken within each round, then the median across rounds."""
    per_round: list[dict[str, LoadResult]] = []
    for round_no in range(1, args.rounds + 1):
        measured = {}
        for scenario in scenarios:
            result = args.loader(host="127.0.0.1", port=port, path=scenario.path, headers=scenario.headers,
                                 concurrency=args.concurrency, seconds=args.seconds, warmup=args.warmup)
            measured[scenario.key] = result
            log(f"round {round_no}: {scenario.label:<48} {result.rps:>8.1f} req/s  p99 {result.p99_ms:>7.2f} ms"
                + (f"  errors {result.errors} {result.statuses}" if result.errors else ""))
        per_round.append(measured)
    rows = []
    for scenario in scenarios:
        results = [r[scenario.key] for r in per_round]
        row = {"scenario": scenario.key, "label": scenario.label,
               "requests_per_second": round(statistics.median(r.rps for r in results), 1),
               "p50_ms": round(statistics.median(r.p50_ms for r in results), 2),
               "p99_ms": round(statistics.median(r.p99_ms for r in results), 2),
               "requests": sum(r.requests for r in results), "errors": sum(r.errors for r in results)}
        if scenario.baseline:
            row["baseline"] = scenario.baseline
            row["ratio"] = round(statistics.median(r[scenario.key].rps / r[scenario.baseline].rps
                                                   for r in per_round), 3)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=6.0, help="measurement window per scenario and round")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; ratios are medians of per-round ratios")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 2) * 2, help="gunicorn processes")
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the benchmark database")
    parser.add_argument("--only", choices=["all", "http", "backfill"], default="all",
                        help="the HTTP scenarios, the findings backfill, or both")
    parser.add_argument("--findings", type=int, default=1_000_000, help="findings for the backfill benchmark")
    parser.add_argument("--backfill-workers", type=int, default=2, help="RQ worker processes for the backfill")
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator: wrk when installed (lighter), else the built-in Python one")
    args = parser.parse_args(argv)
    base_db, redis_url = servers()
    summary = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if args.only in ("all", "http"):
        summary.update(http_benchmark(args, base_db, redis_url))
    if args.only in ("all", "backfill"):
        summary["backfill"] = backfill_benchmark(args, base_db, redis_url)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"results written to {path.relative_to(ROOT)}")
    return 0


def backfill_benchmark(args, base_db: str, redis_url: str) -> dict:
    from bench import backfill

    backfill.ensure_seed(base_db, redis_url, findings=args.findings, tenants=args.tenants, broken_ratio=0.1,
                         fresh=args.fresh, log=log)
    result = backfill.run_backfill(base_db, redis_url, workers=args.backfill_workers, log=log)
    print()
    print(f"findings backfill of {result.findings:,} findings in {result.tenants} tenants "
          f"({result.affected:,} to repair), {args.backfill_workers} RQ workers:")
    differing = result.findings / result.differing_only_seconds
    print(f"  one set-based SQL UPDATE: {result.baseline_seconds:.1f}s = {result.baseline_rows_per_second:,.0f} rows/s "
          f"(writing only the rows that differ: {result.differing_only_seconds:.1f}s = {differing:,.0f} rows/s)")
    print(f"  runbook end to end:       {result.run_seconds:.1f}s = {result.run_rows_per_second:,.0f} rows/s "
          f"(preflight {result.preflight_seconds:.1f}s before it)")
    strict = result.run_rows_per_second / differing
    print(f"  ratio: {result.ratio:.0%} of the UPDATE, {strict:.0%} of the one writing only the differing rows "
          f"(target >= 50 %: {'met' if min(result.ratio, strict) >= 0.5 else 'MISSED'}); "
          f"result verified: {'yes' if result.verified else 'NO'}")
    peak = max(result.worker_peak_pss_mb)
    print(f"  worker peak memory (PSS of worker + work horse): {', '.join(f'{m:.0f} MB' for m in result.worker_peak_pss_mb)}"
          f" (target < 256 MB: {'met' if peak < 256 else 'MISSED'}); largest single process RSS "
          f"{result.process_peak_rss_mb:.0f} MB")
    return result.as_json()


def http_benchmark(args, base_db: str, redis_url: str) -> dict:
    args.loader = choose_loader(args.loader)
    database_url = bench_database(base_db, args.fresh)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "SECRET_KEY": "opsdesk-benchmark-secret-not-for-production-0123456789",
           "OPSDESK_REDIS_PREFIX": "opsdesk-bench", "OPSDESK_QUEUE_PREFIX": "opsdesk-bench",
           "SESSION_COOKIE_SECURE": "false", "OPSDESK_LOGIN_MAX_FAILURES": "1000"}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "OPSDESK_REDIS_PREFIX")})
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    fixture = seed.ensure_audit_fixture(database_url, rows=args.audit_rows, log=log)
    incidents = seed.ensure_incident_fixture(rows=args.incidents, tenants=args.tenants, log=log)

    port = free_port()
    log(f"gunicorn with {args.workers} workers on port {port}; {args.concurrency} connections; "
        f"{args.rounds} interleaved rounds of {args.seconds:.0f}s per scenario (+{args.warmup:.0f}s warm-up)")
    server = start_gunicorn(env, port, args.workers)
    try:
        cookie = sign_in(port, fixture.auditor_email, fixture.password)
        analyst_cookie = sign_in(port, incidents.analyst_email, incidents.password)
        token = api_token(port, incidents.analyst_email, incidents.password)
        board_filters = "severity=p2"
        scenarios = [
            Scenario("trivial", "trivial route (GET /healthz)", "/healthz"),
            Scenario("bare", "bare route: 50 audit rows, one keyset query",
                     f"/bench/bare/audit?workspace_id={fixture.workspace_id}&action=update"),
            Scenario("audit_view", "audit view page (signed in, filtered, 50 rows)", "/audit?action=update",
                     {"Cookie": cookie}, baseline="bare"),
            Scenario("audit_filter", "audit filter as you type (HTMX fragment)", "/audit?action=update",
                     {"Cookie": cookie, "HX-Request": "true", "HX-Target": "results"}, baseline="bare"),
            Scenario("bare_board", "bare route: 50 board rows, one keyset query",
                     f"/bench/bare/incidents?workspace_id={incidents.workspace_id}&severity=p2"),
            Scenario("board", "board page (signed in, filtered, counts, 50 rows)", f"/incidents?{board_filters}",
                     {"Cookie": analyst_cookie}, baseline="bare_board"),
            Scenario("board_search", "board live search (HTMX fragment)", f"/incidents?{board_filters}&q=treasury",
                     {"Cookie": analyst_cookie, "HX-Request": "true", "HX-Target": "board-results"},
                     baseline="bare_board"),
            Scenario("api_list", "GET /api/v1/incidents (token, filtered, 50)",
                     "/api/v1/incidents?status=active&severity=p2", {"Authorization": f"Bearer {token}"},
                     baseline="bare_board"),
        ]
        results = run_rounds(port, scenarios, args)
    finally:
        server.terminate()
        server.wait(timeout=30)

    summary = {
        "audit_rows": fixture.audit_rows, "incidents": incidents.incidents, "incident_tenants": incidents.tenants,
        "rounds": args.rounds,
        "scenarios": results,
        "targets": {"audit_view_vs_bare": ">= 0.80", "board_vs_bare": ">= 0.80", "board_p99_ms": "< 150"},
    }
    print()
    print(f"{'scenario':<48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12}")
    for row in results:
        ratio = f"{row['ratio']:.0%} of {row['baseline']}" if row.get("ratio") is not None else ""
        print(f"{row['label']:<48} {row['requests_per_second']:>8.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
              f"{ratio:>12}")
    view = next(r for r in results if r["scenario"] == "audit_view")
    board = next(r for r in results if r["scenario"] == "board")
    print(f"\naudit view / bare route: {view['ratio']:.0%} (median of per-round ratios; target >= 80 %: "
          f"{'met' if view['ratio'] >= 0.8 else 'MISSED'}); audit view p99 {view['p99_ms']:.1f} ms")
    print(f"board / bare route: {board['ratio']:.0%} (target >= 80 %: {'met' if board['ratio'] >= 0.8 else 'MISSED'}); "
          f"board p99 {board['p99_ms']:.1f} ms at {args.concurrency} connections (target < 150 ms: "
          f"{'met' if board['p99_ms'] < 150 else 'MISSED'})")
    return summary


if __name__ == "__main__":
    sys.exit(main())
