"""Issue 12, item 5: the portal (htmx) and the staff console work in Chromium under the CSP.

Every console message about a Content Security Policy fails the test: a blocked
script or handler would leave a button silently dead.
"""

import datetime as dt
import re

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.extensions import db
from portal.models import Invoice, User
from tests.browser.conftest import STAFF, shot

pytestmark = pytest.mark.browser


def _watch(page, seen: list[str]):
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: seen.append(f"page error: {exc}"))


def _log_in(page, base, email, password):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_htmx_pages_and_the_staff_console_work_under_the_csp(served, browser):
    app, base = served
    with app.app_context():
        user = User(email="csp@example.com", name="Csp", password_hash=generate_password_hash("csp password 42"))
        db.session.add(user)
        db.session.flush()
        now = dt.datetime.now(dt.UTC)
        subscribe(db.session, user, find_plan(db.session, "basic"), now, BillingSettings())
        db.session.commit()
        invoice_id = db.session.scalar(select(Invoice.id).where(Invoice.user_id == user.id))
    violations: list[str] = []

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    _watch(page, violations)
    _log_in(page, base, "csp@example.com", "csp password 42")
    page.wait_for_url(f"{base}/account")
    assert "Content-Security-Policy" in page.evaluate(
        "fetch('/account').then(r => [...r.headers.keys()].map(k => k.toLowerCase()))"
        ".then(keys => keys.includes('content-security-policy') ? 'Content-Security-Policy' : '')"
    )
    page.evaluate("window.__sameDocument = true")
    page.select_option("#plan-select", "pro")  # htmx swaps the preview in
    page.wait_for_selector("#change-preview-body")
    assert re.search(r"costs \$\d+\.\d\d", page.inner_text("#change-preview-body"))
    assert page.evaluate("window.__sameDocument") is True
    page.close()

    staff = browser.new_page(viewport={"width": 1300, "height": 900})
    _watch(staff, violations)
    _log_in(staff, base, *STAFF)
    staff.wait_for_url(f"{base}/admin/")
    staff.click("a.nav-link:has-text('Invoices')")
    staff.wait_for_url(re.compile(r".*/admin/invoice/.*"))
    staff.check(f"input.action-checkbox[value='{invoice_id}']")
    staff.click("a.dropdown-toggle:has-text('With selected')")
    staff.once("dialog", lambda d: d.accept())  # Flask-Admin's confirm, an inline handler
    staff.click("a.dropdown-item:has-text('Void')")
    staff.wait_for_selector("text=Voided 1 invoice(s).")
    shot(staff, "admin-under-csp")
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "void"
    staff.close()
    assert violations == []
