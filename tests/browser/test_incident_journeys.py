"""Journeys through the incident console: report and work an incident, review and close a
high-priority one, see refusals inline, and filter the board."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from app.extensions import db
from app.incidents import service
from tests.factories import PASSWORD

TIMEOUT = 10_000
NO_RELOAD_MARK = "window.__opsdeskJourney"


# -- helpers -------------------------------------------------------------------------------------

def sign_in(page: Page, world, role: str, path: str) -> None:
    """Open `path`, get sent to the sign-in page, sign in, and come back to `path`."""
    page.goto(path)
    expect(page.locator("h1")).to_have_text("Sign in to Opsdesk")
    page.fill("#email", world.email(role))
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page).to_have_url(re.compile(re.escape(path.split("?")[0])))


def mark_page(page: Page) -> None:
    """Tag the loaded document; a full reload would lose the tag."""
    page.evaluate(f"{NO_RELOAD_MARK} = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate(f"{NO_RELOAD_MARK} === true"), "the page was reloaded instead of swapped by HTMX"


def status_tag(page: Page):
    return page.locator("#incident .incident-title .status")


def open_form(page: Page, action: str):
    """Open the SOP form `#form-<action>` (its <details>) and return the section."""
    section = page.locator(f"#form-{action}")
    expect(section).to_be_visible()
    details = section.locator("details")
    if details.get_attribute("open") is None:
        section.locator("summary").click()
    expect(section.locator(f"#submit-{action}")).to_be_visible()
    return section


def csp_problems(page: Page) -> list[str]:
    return [p for p in page.console_problems if "Content Security Policy" in p]


def prepare_incident(world, *, title: str, severity: str = "p3", steps: tuple[tuple[str, dict], ...] = (),
                     tenant=None):
    """An incident reported by the analyst through the service, then moved along by `steps`."""
    analyst = world.actor("service_desk_analyst")
    incident = service.create_incident(actor=analyst, strict=False, data={
        "title": title, "severity": severity, "tenant": (tenant or world.tenant_a).id})
    for action, data in steps:
        incident = service.perform(actor=analyst, incident_id=incident.id, action=action, data=data, strict=False)
    db.session.commit()
    return incident


RESOLVED = (("acknowledge", {}), ("resolve", {"summary": "Restarted the failing node; traffic is back."}))


# -- 1. report and work an incident ---------------------------------------------------------------

def test_analyst_reports_and_works_an_incident(page, world):
    analyst_slug = world.users["service_desk_analyst"].slug
    resolver_slug = world.users["resolver"].slug
    title = "Checkout API returns 502 for EU customers"

    # the analyst opens the board and reports a new incident
    sign_in(page, world, "service_desk_analyst", "/incidents")
    expect(page.locator("h1")).to_have_text("Incident board")
    page.click("#new-incident")
    expect(page.locator("h1")).to_have_text("Report an incident")
    page.fill("#title", title)
    page.select_option("#tenant", label=world.tenant_a.name)
    page.select_option("#severity", "p2")
    page.click("#create-incident")

    # ... and lands on its page
    expect(page).to_have_url(re.compile(r"/incidents/[0-9a-f-]{36}$"))
    incident_url = page.url
    expect(page.locator("#incident h1")).to_contain_text(title)
    expect(page.locator(".alert-success")).to_contain_text("reported")
    expect(status_tag(page)).to_have_text("Open")
    expect(page.locator("#incident .sev")).to_have_text("P2")
    expect(page.locator("#timeline")).to_contain_text(f"Reported by {analyst_slug}")
    mark_page(page)

    # acknowledge: HTMX swaps the incident in place
    form = open_form(page, "acknowledge")
    expect(form.locator("summary")).to_have_text("Acknowledge")
    form.locator("#submit-acknowledge").click()
    expect(status_tag(page)).to_have_text("Investigating")
    expect(page.locator("#timeline")).to_contain_text("Status: Open → Investigating.")
    expect(page.locator("#timeline")).to_contain_text(f"Acknowledged by {analyst_slug}")
    expect(page.locator("#comms-h + table")).to_contain_text("End users")  # the reporter was told
    assert_not_reloaded(page)

    # escalate to L2 with a reason
    form = open_form(page, "escalate")
    form.locator("#escalate-team").select_option("L2")
    form.locator("#escalate-reason").fill("Needs a database failover; beyond L1 runbooks.")
    form.locator("#submit-escalate").click()
    expect(status_tag(page)).to_have_text("Escalated")
    expect(page.locator("#timeline")).to_contain_text("Status: Investigating → Escalated.")
    expect(page.locator("#timeline")).to_contain_text("Escalated to L2: Needs a database failover; beyond L1 runbooks.")
    expect(page.locator(".incident-facts")).to_contain_text("L2")
    assert_not_reloaded(page)
    assert page.url == incident_url

    # the escalation's owner (a resolver) signs in on the incident and takes it back
    page.click("#sign-out")
    expect(page.locator("h1")).to_have_text("Sign in to Opsdesk")
    sign_in(page, world, "resolver", urlsplit(incident_url).path)
    expect(page).to_have_url(incident_url)
    expect(status_tag(page)).to_have_text("Escalated")
    mark_page(page)

    form = open_form(page, "acknowledge")
    expect(form.locator("summary")).to_have_text("Take back (investigating)")
    expect(form.locator("#acknowledge-team")).to_have_value("L2")
    form.locator("#acknowledge-assignee").fill(resolver_slug)
    form.locator("#submit-acknowledge").click()
    expect(status_tag(page)).to_have_text("Investigating")
    expect(page.locator("#timeline")).to_contain_text("Status: Escalated → Investigating.")
    expect(page.locator("#timeline")).to_contain_text(f"Acknowledged by {resolver_slug}; assigned to L2 ({resolver_slug}).")
    assert_not_reloaded(page)

    # engage a vendor: pending vendor, the resolution clock is paused
    form = open_form(page, "engage_vendor")
    form.locator("#engage_vendor-vendor").fill("Acme Cloud")
    form.locator("#engage_vendor-contact_method").select_option("vendor_portal")
    form.locator("#engage_vendor-reference").fill("ACME-4411")
    form.locator("#submit-engage_vendor").click()
    expect(status_tag(page)).to_have_text("Pending vendor")
    expect(page.locator("#timeline")).to_contain_text("Status: Investigating → Pending vendor.")
    expect(page.locator("#timeline")).to_contain_text("The resolution clock is paused while we wait.")
    expect(page.locator(".incident-facts")).to_contain_text("paused")
    expect(page.locator(".incident-actions")).to_contain_text("Vendor Acme Cloud (Vendor portal, ACME-4411) engaged")
    assert_not_reloaded(page)

    # resolve with a summary
    form = open_form(page, "resolve")
    form.locator("#resolve-summary").fill("Vendor fixed the load balancer pool; 502s stopped at 14:05.")
    form.locator("#submit-resolve").click()
    expect(status_tag(page)).to_have_text("Resolved")
    expect(page.locator("#timeline")).to_contain_text("Status: Pending vendor → Resolved.")
    expect(page.locator("#incident")).to_contain_text("Vendor fixed the load balancer pool; 502s stopped at 14:05.")
    expect(page.locator(".incident-actions")).to_contain_text("Vendor Acme Cloud (Vendor portal, ACME-4411) until")
    assert_not_reloaded(page)
    assert page.url == incident_url

    assert not csp_problems(page), page.console_problems


# -- 2. review, sign off and close a high-priority incident ---------------------------------------

def test_incident_manager_reviews_signs_off_and_closes(page, world):
    incident = prepare_incident(world, title="Core switch failure in DC2", severity="p1", steps=RESOLVED)
    manager_slug = world.users["incident_manager"].slug
    path = f"/incidents/{incident.id}"

    sign_in(page, world, "incident_manager", path)
    expect(status_tag(page)).to_have_text("Resolved")
    expect(page.locator("#incident")).to_contain_text("needs a signed-off review before it can be closed")
    mark_page(page)

    # write the review (its form is open while there is none)
    review = page.locator("#form-review")
    expect(review.locator("summary")).to_have_text("Write the review")
    review.locator("#review-summary").fill("The DC2 core switch lost its supervisor module; traffic failed over late.")
    review.locator("#review-contributing_factors").fill("Failover timers were left at vendor defaults.")
    review.locator("#submit-review").click()
    section = page.locator("section[aria-labelledby=review-h]")
    expect(section.locator(".panel")).to_contain_text(f"draft written by {manager_slug}")
    expect(section.locator(".panel")).to_contain_text("The DC2 core switch lost its supervisor module")
    expect(section.locator(".panel")).to_contain_text("Failover timers were left at vendor defaults.")
    expect(page.locator("#form-review summary")).to_have_text("Revise the review")
    assert_not_reloaded(page)

    # sign it off
    page.click("#submit-sign-off")
    expect(section.locator(".panel .tag.ok")).to_have_text("signed off")
    expect(section.locator(".panel")).to_contain_text(f"signed off by {manager_slug}")
    expect(page.locator("#submit-sign-off")).to_have_count(0)
    assert_not_reloaded(page)

    # close the incident
    form = open_form(page, "close")
    expect(form).to_contain_text("High priority: needs a signed-off review")
    form.locator("#close-notes").fill("Review signed off; action items tracked in the PIR.")
    form.locator("#submit-close").click()
    expect(status_tag(page)).to_have_text("Closed")
    expect(page.locator("#timeline")).to_contain_text("Status: Resolved → Closed.")
    expect(page.locator("#timeline")).to_contain_text("Review signed off; action items tracked in the PIR.")
    expect(page.locator("#form-close")).to_have_count(0)
    assert_not_reloaded(page)

    assert not csp_problems(page), page.console_problems


# -- 3. a refused action shows its error inline ---------------------------------------------------

def test_refused_actions_show_their_errors_inline(page, world):
    resolved = prepare_incident(world, title="Mail relay queueing for hours", severity="p1", steps=RESOLVED)
    working = prepare_incident(world, title="Intranet search is slow", severity="p3", steps=(("acknowledge", {}),))

    # closing a high-priority incident without a signed-off review is refused inside the close form
    sign_in(page, world, "incident_manager", f"/incidents/{resolved.id}")
    expect(status_tag(page)).to_have_text("Resolved")
    mark_page(page)
    form = open_form(page, "close")
    form.locator("#close-notes").fill("All good, closing.")
    form.locator("#submit-close").click()
    form = page.locator("#form-close")
    expect(form.locator(".alert-error")).to_contain_text(
        "A high-priority incident needs a signed-off post-incident review before it can be closed.")
    expect(form.locator("details")).to_have_attribute("open", "")
    expect(form.locator("#close-notes")).to_have_value("All good, closing.")  # what was typed is kept
    expect(status_tag(page)).to_have_text("Resolved")
    expect(page.locator("#timeline")).not_to_contain_text("Closed")
    expect(page.locator("#form-close")).to_have_count(1)  # swapped in place, not nested or duplicated
    assert_not_reloaded(page)

    # escalating with an empty reason shows the error next to the reason field
    page.goto(f"/incidents/{working.id}")
    expect(status_tag(page)).to_have_text("Investigating")
    mark_page(page)
    form = open_form(page, "escalate")
    form.locator("#escalate-team").select_option("L3")
    form.locator("#submit-escalate").click()
    form = page.locator("#form-escalate")
    reason_field = form.locator(".field", has=page.locator("#escalate-reason"))
    expect(reason_field.locator(".error")).to_have_text("required")
    expect(reason_field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(form.locator("#error-escalate-reason")).to_be_visible()
    expect(form.locator(".alert-error")).to_be_visible()
    expect(form.locator("#escalate-team")).to_have_value("L3")
    expect(form.locator("#escalate-team").locator("xpath=..").locator(".error")).to_have_count(0)
    expect(status_tag(page)).to_have_text("Investigating")
    expect(page.locator("#timeline")).not_to_contain_text("Escalated to")
    assert_not_reloaded(page)

    # the corrected form goes through
    form.locator("#escalate-reason").fill("Search cluster needs an index rebuild.")
    form.locator("#submit-escalate").click()
    expect(status_tag(page)).to_have_text("Escalated")
    expect(page.locator("#timeline")).to_contain_text("Escalated to L3: Search cluster needs an index rebuild.")
    assert_not_reloaded(page)

    assert not csp_problems(page), page.console_problems


# -- 4. the board's filters and live search ------------------------------------------------------

def test_board_filters_and_live_search(page, world):
    payment = prepare_incident(world, title="Payment gateway timeouts", severity="p1")
    payroll = prepare_incident(world, title="Payroll export failing", severity="p2")
    printer = prepare_incident(world, title="Printer jam on floor three", severity="p4")
    vpn = prepare_incident(world, title="VPN latency spikes", severity="p3", tenant=world.tenant_b)
    rows = page.locator("#board-table tbody tr")

    sign_in(page, world, "service_desk_analyst", "/incidents")
    expect(page.locator("h1")).to_have_text("Incident board")
    expect(rows).to_have_count(4)
    expect(page.locator(".status-counts")).to_be_visible()
    expect(page.locator(".status-counts")).to_contain_text("4 Open")
    mark_page(page)

    # live search: typing is enough, the results follow and the address bar too
    page.fill("#q", "pay")
    expect(page).to_have_url(re.compile(r"/incidents\?(.*&)?q=pay(&|$)"), timeout=TIMEOUT)
    assert "severity=p2" not in page.url
    expect(rows).to_have_count(2)
    expect(page.locator(f"#incident-{payment.number}")).to_contain_text("Payment gateway timeouts")
    expect(page.locator(f"#incident-{payroll.number}")).to_contain_text("Payroll export failing")
    expect(page.locator(f"#incident-{printer.number}")).to_have_count(0)
    expect(page.locator(f"#incident-{vpn.number}")).to_have_count(0)
    expect(page.locator(".status-counts")).to_contain_text("2 matches")  # a text search counts matches
    assert_not_reloaded(page)

    # choose a severity: URL and rows follow
    page.select_option("#severity", "p2")
    expect(page).to_have_url(re.compile(r"/incidents\?(?=(.*&)?q=pay(&|$))(?=(.*&)?severity=p2(&|$))"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Payroll export failing")
    expect(page.locator(".status-counts")).to_be_visible()
    expect(page.locator(".status-counts")).to_contain_text("1 match")
    assert_not_reloaded(page)

    # back: the previous filter state is shown again
    page.go_back()
    expect(page).to_have_url(re.compile(r"/incidents\?(.*&)?q=pay(&|$)"))
    assert "severity=p2" not in page.url
    expect(page.locator("#q")).to_have_value("pay")
    expect(page.locator("#severity")).to_have_value("")
    expect(rows).to_have_count(2)
    expect(page.locator(".status-counts")).to_be_visible()

    # back again: the unfiltered board
    page.go_back()
    expect(page).to_have_url(re.compile(r"/incidents$"))
    expect(page.locator("#q")).to_have_value("")
    expect(rows).to_have_count(4)

    assert not csp_problems(page), page.console_problems
