"""The whole journey in a real browser: sign up, pay, change plan, get billed, staff."""
import datetime as dt
import re

import pytest

from tests.browser.conftest import STAFF, shot

pytestmark = pytest.mark.browser


def sign_up(page, app, base, email):
    page.goto(f"{base}/signup")
    page.fill("input[name=name]", "Grace Hopper")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "a long password")
    page.fill("input[name=confirm]", "a long password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/login")
    assert "open the link we emailed" in page.inner_text("body")
    page.goto(confirmation_link(app, email))  # the link in the mail
    page.click("button:has-text('Confirm and continue')")
    page.wait_for_url(f"{base}/pricing")


def confirmation_link(app, email):
    """The link in the mail the server printed (console mail, in gunicorn's log)."""
    from pathlib import Path

    from tests.live_server import server_log

    folder = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).parent
    mails = server_log(folder / "instance").split(f"--- mail to {email}: Confirm your email")
    assert len(mails) > 1, f"no confirmation mail to {email}"
    return re.search(r"http://\S+/signup/confirm/\S+", mails[-1]).group(0)


def subscribe_and_pay(page, base, name):
    page.click("form:has(input[value=pro]) button")
    page.wait_for_url(f"{base}/account")
    assert "Pro" in page.inner_text("#subscription")
    page.click("a:has-text('INV-')")
    page.wait_for_url(re.compile(r".*/invoices/\d+$"))
    shot(page, f"{name}-invoice")
    page.click("button:has-text('Pay $29.00')")
    page.wait_for_url(re.compile(r".*/demo/checkout/.*"))
    assert "TEST MODE" in page.inner_text("body")
    shot(page, f"{name}-checkout")
    page.click("button[value=pay]")
    page.wait_for_url(re.compile(r".*/payments/return.*"))
    page.wait_for_selector("text=is paid")


def test_the_customer_journey_with_htmx(served, browser):
    app, base = served
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    sign_up(page, app, base, "grace@example.com")
    assert page.locator(".plan").count() == 3
    shot(page, "pricing")
    subscribe_and_pay(page, base, "js")

    # Change to Enterprise: the prorated amount shows before confirming, swapped in place.
    page.goto(f"{base}/account")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#recent-invoices tbody tr").count() == 1
    page.select_option("#plan-select", "enterprise")
    page.wait_for_selector("#change-preview-body")
    preview = page.inner_text("#change-preview-body")
    assert re.search(r"costs \$\d+\.\d\d for the \d+ days left", preview), preview
    page.click("#change-preview-body button")
    page.wait_for_selector("text=You are now on Enterprise")
    # The prorated invoice joins the recent invoices in the same swap.
    page.wait_for_function("document.querySelectorAll('#recent-invoices tbody tr').length === 2")
    shot(page, "account")
    # Cancel at period end, then resume: the panel changes, the document stays.
    page.once("dialog", lambda d: d.accept())
    page.click("button:has-text('Cancel at period end')")
    page.wait_for_selector("#subscription-status:has-text('Cancels on')")
    page.click("button:has-text('Resume subscription')")
    page.wait_for_selector("#subscription-status:has-text('Active')")
    assert page.evaluate("window.__sameDocument") is True  # no full page load happened

    # A month later the billing run issues the next invoice; later it is overdue
    # and a reminder reaches the customer's notifications.
    runner = app.test_cli_runner()
    next_month = dt.date.today() + dt.timedelta(days=32)
    assert runner.invoke(args=["billing", "run", "--as-of", next_month.isoformat()]).exit_code == 0
    overdue_day = next_month + dt.timedelta(days=app.config["BILLING_DUE_DAYS"] + 3)
    assert runner.invoke(args=["billing", "run", "--as-of", overdue_day.isoformat()]).exit_code == 0
    page.goto(f"{base}/invoices")
    page.click("a.chip:has-text('Overdue')")
    page.wait_for_selector("#invoice-list .badge.overdue")
    shot(page, "invoices")
    page.goto(f"{base}/notifications")
    assert "overdue" in page.inner_text("main").lower()

    # Staff find the overdue invoice by the customer's email and mark it paid.
    staff = browser.new_page(viewport={"width": 1300, "height": 900})
    staff.goto(f"{base}/login")
    staff.fill("input[name=email]", STAFF[0])
    staff.fill("input[name=password]", STAFF[1])
    staff.click("button[type=submit]")
    staff.wait_for_url(f"{base}/admin/")
    overdue_before = staff.inner_text("#overdue-USD")
    assert overdue_before != "$0.00"
    shot(staff, "admin-dashboard")
    staff.goto(f"{base}/admin/invoice/?search=grace@example.com&flt0_status_equals=overdue")
    staff.click("a[title='View Record']")
    staff.click("a:has-text('Mark paid')")
    amount = staff.inner_text("button:has-text('Record payment')").split()[-1]
    staff.fill("textarea[name=note]", "Bank transfer 2211")
    staff.click("button:has-text('Record payment')")
    staff.wait_for_selector("text=marked paid")
    staff.goto(f"{base}/admin/")
    dollars = lambda text: float(text.strip("$").replace(",", ""))  # noqa: E731
    assert dollars(staff.inner_text("#overdue-USD")) == pytest.approx(dollars(overdue_before) - dollars(amount))


def test_without_javascript_the_plain_forms_work(served, browser):
    app, base = served
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_up(page, app, base, "nojs@example.com")
    subscribe_and_pay(page, base, "nojs")
    page.goto(f"{base}/account")
    page.select_option("#plan-select", "enterprise")
    page.click("button:has-text('Change plan…')")
    page.wait_for_url(re.compile(r".*/account/change-plan\?plan=enterprise"))
    assert re.search(r"costs \$\d+\.\d\d", page.inner_text("main"))
    page.click("button:has-text('Confirm change to Enterprise')")
    page.wait_for_url(f"{base}/account")
    assert "You are now on Enterprise" in page.inner_text("main")
    page.click("button:has-text('Cancel at period end')")
    page.wait_for_url(f"{base}/account")
    assert "Cancels on" in page.inner_text("#subscription-status")
    page.click("button:has-text('Resume subscription')")
    page.wait_for_url(f"{base}/account")
    assert "Active" in page.inner_text("#subscription-status")
    context.close()
