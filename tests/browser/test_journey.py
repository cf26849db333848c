"""The whole journey in a real browser under gunicorn, reached by clicking from the front door."""

import datetime as dt
import re

import pytest

from tests.browser.conftest import STAFF, click, confirmation_link, first_page, log_in, shot

pytestmark = pytest.mark.browser


def expect_page(page, heading: str) -> None:
    """A whole page arrived: the top bar and the page's own heading, not a bare fragment."""
    page.get_by_role("heading", name=heading).first.wait_for()
    assert page.locator("header.topbar").count() == 1, f"no top bar on {page.url}"
    assert page.locator("footer.footer").count() == 1, f"no footer on {page.url}"


def sign_up_for_pro(page, app, base: str, email: str, name: str) -> None:
    """Front door → Start with Pro → sign up → the mailed link → summary → confirm → account."""
    first_page(page, base)
    expect_page(page, "Simple pricing that grows with you")
    click(page, "Start with Pro")
    expect_page(page, "Create your account")
    assert "Your plan: Pro" in page.inner_text("#chosen-plan")
    page.get_by_label("Name").fill("Grace Hopper")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("a long password")
    page.get_by_label("Repeat password").fill("a long password")
    click(page, "Create account", "button")
    expect_page(page, "Log in")
    assert f"open the link we emailed to {email}" in page.inner_text("#flashes")
    page.goto(confirmation_link(app, email))  # a click in the mail
    expect_page(page, "Finish signing up")
    click(page, "Confirm and continue", "button")
    expect_page(page, "Pro")
    assert page.inner_text("#due-today") == "$29.00"
    assert re.fullmatch(r"\w{3} \d{1,2}, \d{4} · \$29\.00", page.inner_text("#next-billing"))
    shot(page, f"{name}-plan-summary")
    click(page, "Confirm and subscribe to Pro", "button")
    expect_page(page, "Your account")
    assert "You are subscribed to Pro" in page.inner_text("main")
    assert page.get_by_role("button", name="Pay $29.00").is_visible()


def pay_first_invoice(page, name: str) -> None:
    click(page, "Pay $29.00", "button")
    page.wait_for_url(re.compile(r".*/demo/checkout/.*"))
    assert "TEST MODE" in page.inner_text("body")
    shot(page, f"{name}-checkout")
    page.get_by_role("button", name="Pay $29.00").click()
    page.get_by_text("is paid").first.wait_for()
    shot(page, f"{name}-paid")


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_new_customer_clicks_through_the_portal(served, open_page, js):
    app, base = served
    name = "js" if js else "nojs"
    page = open_page(js=js)
    sign_up_for_pro(page, app, base, f"grace-{name}@example.com", name)
    shot(page, f"{name}-account-new")

    # Every top-bar link and in-page link gives a whole page (a boosted click too).
    click(page, "Invoices")
    expect_page(page, "Invoices")
    click(page, "Account")
    expect_page(page, "Your account")
    click(page, "All invoices →")
    expect_page(page, "Invoices")
    click(page, "Notifications")
    expect_page(page, "Notifications")
    # The first invoice's notice is queued when it is issued, not at the next daily run.
    with app.app_context():
        from sqlalchemy import select

        from portal.extensions import db
        from portal.models import Notification, User

        user = db.session.scalar(select(User).where(User.email == f"grace-{name}@example.com"))
        assert (
            db.session.scalar(
                select(Notification.kind).where(Notification.user_id == user.id, Notification.invoice_id.is_not(None))
            )
            == "invoice_issued"
        )
    click(page, "API tokens")
    expect_page(page, "API tokens")
    click(page, "Pricing")
    expect_page(page, "Simple pricing that grows with you")
    assert page.get_by_text("Your plan").first.is_visible()
    click(page, "Invoices")
    expect_page(page, "Invoices")
    page.locator("#invoices a.nowrap").first.click()
    page.wait_for_url(re.compile(r".*/invoices/\d+$"))
    assert page.locator("header.topbar").count() == 1
    assert re.fullmatch(r"INV-\d{6}", page.locator("h1").inner_text())
    click(page, "← All invoices")
    expect_page(page, "Invoices")
    click(page, "Account")
    expect_page(page, "Your account")

    # A second tab keeps the invoice open; the first one pays it.
    stale = page.context.new_page()
    stale.goto(page.url)  # the same account page, as a second tab opened earlier
    pay_first_invoice(page, name)
    click(page, page.locator("main a", has_text="View invoice").inner_text())
    page.wait_for_url(re.compile(r".*/invoices/\d+$"))
    assert page.locator("#receipt").inner_text() == "Receipt"
    # The stale tab's Pay button: a plain answer and the receipt, no second checkout.
    stale.get_by_role("button", name="Pay $29.00").click()
    stale.get_by_text("is already paid").wait_for()
    assert "/demo/checkout/" not in stale.url and stale.locator("#receipt").is_visible()
    shot(stale, f"{name}-already-paid")
    stale.close()

    # Change to Enterprise: the prorated amount before confirming, then an invoice to pay.
    click(page, "Account")
    expect_page(page, "Your account")
    page.select_option("#plan-select", "enterprise")
    if not js:
        click(page, "Change plan…", "button")
        expect_page(page, "Change plan")
    page.wait_for_selector("#change-preview-body")
    preview = page.inner_text("#change-preview-body")
    assert re.search(r"costs \$\d+\.\d\d for the rest of this period \(\d+ of \d+ days left\)", preview), preview
    amount = re.search(r"costs (\$\d+\.\d\d)", preview).group(1)
    click(page, "Confirm change to Enterprise", "button")
    page.get_by_text("You are now on Enterprise").wait_for()
    message = page.inner_text("main")
    assert re.search(rf"Invoice INV-\d{{6}} for {re.escape(amount)}", message), message
    page.get_by_role("button", name=f"Pay {amount}").wait_for()
    assert page.locator("#recent-invoices tbody tr").count() == 2
    shot(page, f"{name}-account-after-upgrade")

    # Choosing the plan you are on says so plainly (no red box inside the preview).
    if js:
        page.select_option("#plan-select", "enterprise")
        page.get_by_text("You are already on the Enterprise plan.").wait_for()
        assert page.locator("#change-preview .flash.error").count() == 0

    # Cancel at period end, then resume.
    page.once("dialog", lambda d: d.accept())
    click(page, "Cancel at period end", "button")
    page.wait_for_selector("#subscription-status:has-text('Cancels on')")
    click(page, "Resume subscription", "button")
    page.wait_for_selector("#subscription-status:has-text('Active')")

    # Filters: by click, marked, in the address bar, and still there after a reload.
    click(page, "Invoices")
    expect_page(page, "Invoices")
    click(page, "Paid")
    page.wait_for_url(re.compile(r".*/invoices\?status=paid$"))
    page.wait_for_selector("a.chip[aria-current]:has-text('Paid')")
    assert page.locator("#invoices tbody tr").count() == 1
    assert page.locator("#invoices .badge.paid").count() == 1
    page.reload()
    assert page.locator("a.chip[aria-current]").inner_text() == "Paid"
    click(page, "Open")
    page.wait_for_url(re.compile(r".*/invoices\?status=open$"))
    page.wait_for_selector("a.chip[aria-current]:has-text('Open')")
    assert page.locator("#invoices .badge.open").count() == 1
    shot(page, f"{name}-invoices-open")
    click(page, "All")
    page.wait_for_selector("a.chip[aria-current]:has-text('All')")
    assert page.locator("#invoices tbody tr").count() == 2

    # Someone else's invoice (a typed address, on purpose) is a 404 page with a way home.
    page.goto(f"{base}/invoices/1")
    if "Not found" not in page.inner_text("main"):  # invoice 1 may be this customer's own
        page.goto(f"{base}/invoices/999999")
    expect_page(page, "Not found")
    click(page, "Back to your account")
    expect_page(page, "Your account")


def test_new_api_token_has_a_copy_button(served, open_page, make_customer):
    _, base = served
    email, password = make_customer("tokens@example.com")
    page = open_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, base, email, password)
    click(page, "API tokens")
    page.get_by_label("Name").fill("ci")
    click(page, "Create token", "button")
    page.get_by_role("heading", name="Your new token").wait_for()
    secret = page.inner_text("#new-token")
    click(page, "Copy", "button")
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "tokens-new")


def test_billing_over_time_and_staff_at_work(served, open_page, make_customer):
    app, base = served
    email, password = make_customer("overdue@example.com", plan="pro")
    # A month later the billing run issues the next invoice; later it is overdue
    # and a notice reaches the customer's notifications.
    runner = app.test_cli_runner()
    next_month = dt.date.today() + dt.timedelta(days=32)
    assert runner.invoke(args=["billing", "run", "--as-of", next_month.isoformat()]).exit_code == 0
    overdue_day = next_month + dt.timedelta(days=app.config["BILLING_DUE_DAYS"] + 3)
    assert runner.invoke(args=["billing", "run", "--as-of", overdue_day.isoformat()]).exit_code == 0
    page = open_page()
    log_in(page, base, email, password)
    expect_page(page, "Your account")
    assert page.locator("#to-pay .badge.overdue").count() >= 1
    click(page, "Invoices")
    click(page, "Overdue")
    page.wait_for_selector("#invoices .badge.overdue")
    shot(page, "invoices-overdue")
    click(page, "Notifications")
    assert "overdue" in page.inner_text("main").lower()

    # Staff log in on the same page, find the overdue invoice and mark it paid, all by clicking.
    staff = open_page()
    staff.set_viewport_size({"width": 1300, "height": 900})
    log_in(staff, base, *STAFF)
    staff.wait_for_url(f"{base}/admin/")
    staff.get_by_role("heading", name=re.compile("Business at a glance")).wait_for()
    assert staff.get_by_role("heading", name="Dashboard").count() == 0
    overdue_before = staff.inner_text("#overdue-USD")
    assert overdue_before != "$0.00"
    shot(staff, "admin-dashboard")
    staff.locator("nav").get_by_role("link", name="Invoices", exact=True).click()
    staff.get_by_placeholder(re.compile("Invoice number or customer email")).fill(email)
    staff.keyboard.press("Enter")
    staff.wait_for_url(re.compile(r".*/admin/invoice/\?search="))
    staff.locator("tr", has_text="overdue").first.get_by_role("link", name=re.compile("^View Record INV-")).click()
    staff.get_by_role("link", name="Mark paid…").wait_for()
    assert re.search(r"INV-\d{6}", staff.inner_text("table")), "the invoice number is on its details"
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", staff.inner_text("body")), "raw timestamps shown"
    shot(staff, "admin-invoice-details")
    click(staff, "Mark paid…")
    amount = staff.inner_text("button:has-text('Record payment')").split()[-1]
    staff.get_by_label(re.compile("Note")).fill("Bank transfer 2211")
    click(staff, f"Record payment of {amount}", "button")
    staff.get_by_text("marked paid").wait_for()
    click(staff, "Customer portal")
    staff.get_by_role("heading").first.wait_for()
    staff.go_back()
    staff.locator("nav").get_by_role("link", name=re.compile("Dashboard")).first.click()
    dollars = lambda text: float(text.strip("$").replace(",", ""))  # noqa: E731
    assert dollars(staff.inner_text("#overdue-USD")) == pytest.approx(dollars(overdue_before) - dollars(amount))
    click(staff, "Log out", "button")
    staff.wait_for_url(re.compile(r".*/login$"))
    assert "You are logged out" in staff.inner_text("main")
