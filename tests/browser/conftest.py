"""Headless Chromium (Debian's package) driven by Playwright, against the app on a live local server."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str | None:
    return os.environ.get("OPSDESK_CHROMIUM") or shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def browser_skip_reason() -> str | None:
    if os.environ.get("OPSDESK_BROWSER_SKIP_REASON"):
        return os.environ["OPSDESK_BROWSER_SKIP_REASON"]
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install chromium, or set OPSDESK_CHROMIUM)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = browser_skip_reason()
    for item in items:
        if "tests/browser/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"BROWSER TESTS SKIPPED: {reason}"))


def pytest_terminal_summary(terminalreporter):
    reason = browser_skip_reason()
    if reason:
        terminalreporter.write_sep("!", f"BROWSER JOURNEYS DID NOT RUN: {reason}", red=True, bold=True)


@pytest.fixture(scope="session")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, accept_downloads=True, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.console_problems = []
    page.on("console", lambda m: page.console_problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: page.console_problems.append(str(e)))
    yield page
    context.close()
