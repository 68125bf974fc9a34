"""/metrics: the spec's names, and one truth across several gunicorn processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_request_histogram_has_the_spec_labels(client):
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE mlplatform_api_request_duration_seconds histogram" in text
    assert re.search(r'mlplatform_api_request_duration_seconds_count\{endpoint="/healthz",method="GET",'
                     r'status_code="200"\} [1-9]', text)
    assert "# TYPE mlplatform_redis_denylist_size gauge" in text
    assert "flask_http_request_duration_seconds" in text  # the exporter's defaults stay


def _get(url: str) -> str:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_counts_add_up_across_gunicorn_processes(database_url, server_urls, redis_prefix, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": server_urls[1],
           "SECRET_KEY": "metrics-test-secret-0123456789abcdef0123", "OPSDESK_REDIS_PREFIX": redis_prefix,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
                               "--workers", "3"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                _get(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(40):
            _get(base + "/readyz")
        counts = set()
        for _ in range(6):
            text = _get(base + "/metrics")
            match = re.search(r'mlplatform_api_request_duration_seconds_count\{endpoint="/readyz",method="GET",'
                              r'status_code="200"\} (\S+)', text)
            counts.add(float(match.group(1)))
        assert counts == {40.0}, "every process reports the same, merged count"
    finally:
        server.terminate()
        server.wait(timeout=20)
