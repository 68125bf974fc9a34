"""Journey: sign in, switch tenant, open the audit view, filter it, export CSV, sign out."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import expect

from app.audit import service as audit
from app.extensions import db
from tests.factories import PASSWORD


def test_auditor_journey(page, world):
    actor = world.actor("workspace_admin")
    audit.record(actor=actor, action="escalate", ref_type="incident", ref_id="journey-a",
                 tenant_id=world.tenant_a.id)
    audit.record(actor=actor, action="escalate", ref_type="incident", ref_id="journey-b",
                 tenant_id=world.tenant_b.id)
    audit.record(actor=actor, action="tool_use", ref_type="tool", ref_id="journey-tool", tenant_id=world.tenant_b.id)
    db.session.commit()

    # sign in (keyboard: type and press Enter)
    page.goto("/audit")
    assert "/login?next=/audit" in page.url
    page.fill("#email", world.email("auditor"))
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    expect(page.locator("h1")).to_have_text("Audit trail")

    # switch tenant: the switcher submits itself on change and keeps us on the audit view
    page.select_option("#switch-tenant", label=world.tenant_b.name)
    expect(page.locator(".alert-success")).to_contain_text("Switched tenant")
    expect(page.locator("#switch-tenant")).to_have_value(str(world.tenant_b.id))
    expect(page.locator("#results")).to_contain_text("journey-b")
    expect(page.locator("#results")).not_to_contain_text("journey-a")

    # filter by action: HTMX swaps the results and the URL follows
    page.select_option("#action", "tool_use")
    expect(page.locator("#results")).to_contain_text("journey-tool")
    expect(page.locator("#results")).not_to_contain_text("journey-b")
    expect(page).to_have_url(re.compile(r"/audit\?action=tool_use$"))

    # export what is on screen as CSV
    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["ref_id"] for r in rows] == ["journey-tool"]

    # back button returns to the unfiltered view
    page.go_back()
    expect(page.locator("#results")).to_contain_text("journey-b")

    # sign out: back at the sign-in page, and the console is closed
    page.click("#sign-out")
    expect(page.locator("h1")).to_have_text("Sign in to Opsdesk")
    page.goto("/audit")
    expect(page.locator("h1")).to_have_text("Sign in to Opsdesk")
    assert not [p for p in page.console_problems if "Content Security Policy" in p], page.console_problems
