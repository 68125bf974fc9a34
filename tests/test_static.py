"""htmx is a pinned, unmodified copy served from app/static, with its licence."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "app" / "static" / "vendor"


def test_htmx_is_the_pinned_release():
    recorded = re.search(r"sha256 of `htmx.min.js`: `([0-9a-f]{64})`", (STATIC / "README.md").read_text()).group(1)
    assert hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == recorded
    assert "Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_text()
    assert b'version:"2.0.11"' in (STATIC / "htmx.min.js").read_bytes().replace(b" ", b"")


def test_pages_load_htmx_from_our_own_server(client):
    body = client.get("/login").get_data(as_text=True)
    assert '<script src="/static/vendor/htmx.min.js"' in body
    assert "https://" not in body and "http://" not in body
    served = client.get("/static/vendor/htmx.min.js")
    assert served.status_code == 200 and served.data == (STATIC / "htmx.min.js").read_bytes()
