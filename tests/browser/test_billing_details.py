"""Billing details: reached by clicking from the front door, its error path with JavaScript
on and off, the saved details and tax on the invoice, and the form on a phone."""

import itertools

import pytest

from tests.browser.conftest import click, log_in, shot, submit

pytestmark = pytest.mark.browser
_emails = itertools.count(1)


def open_billing_details(page, base, email, password):
    log_in(page, base, email, password)
    click(page, "Account")
    click(page, "Billing details")
    page.get_by_role("heading", name="Billing details").wait_for()


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_bad_vat_id_is_refused_with_its_reason_then_fixed(served, open_page, make_customer, js):
    _, base = served
    email, password = make_customer(f"vat-{next(_emails)}@example.com", plan="pro")
    page = open_page(js=js)
    open_billing_details(page, base, email, password)
    page.get_by_label("Name on invoices").fill("Ada Lovelace")
    page.get_by_label("Company (optional)").fill("Analytical Engines GmbH")
    page.get_by_label("Address").fill("Hauptstr. 1\n10115 Berlin")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("Tax ID / VAT number (optional)").fill("DE 136 695 977")
    submit(page, "Save billing details")
    error = page.locator("form small.error").filter(has_text="is not a valid EU VAT ID for DE")
    error.wait_for(state="visible")
    assert page.locator("header.topbar").count() == 1
    assert page.get_by_label("Company (optional)").input_value() == "Analytical Engines GmbH"  # kept
    shot(page, f"billing-details-error-{'js' if js else 'nojs'}")
    page.get_by_label("Tax ID / VAT number (optional)").fill("de 136 695 976")
    submit(page, "Save billing details")
    page.locator("#flashes").filter(has_text="Your billing details are saved").wait_for()
    assert page.get_by_label("Tax ID / VAT number (optional)").input_value() == "DE136695976"
    shot(page, f"billing-details-saved-{'js' if js else 'nojs'}")


def test_billing_details_on_a_phone(served, open_page, make_customer):
    _, base = served
    email, password = make_customer(f"phone-{next(_emails)}@example.com", plan="pro")
    page = open_page(phone=True)
    open_billing_details(page, base, email, password)
    page.get_by_label("Country").select_option("FI")
    page.get_by_label("Tax ID / VAT number (optional)").fill("12")
    submit(page, "Save billing details")
    page.locator("form small.error").first.wait_for(state="visible")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
    shot(page, "billing-details-phone")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_a_taxed_invoice_shows_its_lines_tax_and_total(served, open_page, phone):
    """Reached by clicking: Invoices, then the invoice's number."""
    from decimal import Decimal

    from werkzeug.security import generate_password_hash

    from portal.billing.settings import BillingSettings
    from portal.billing.subscriptions import find_plan, subscribe
    from portal.extensions import db
    from portal.models import TaxRate, User, utcnow

    app, base = served
    email, password = f"taxed-{next(_emails)}@example.com", "a long password"
    with app.app_context():
        if db.session.query(TaxRate).filter_by(country="FI", active=True).first() is None:
            db.session.add(TaxRate(name="VAT", percent=Decimal("25.5"), country="FI", inclusive=False, active=True))
        user = User(
            email=email,
            password_hash=generate_password_hash(password),
            created_at=utcnow(),
            billing_name="Veikko Virtanen",
            billing_company="Virtanen Oy",
            billing_address="Mannerheimintie 1\n00100 Helsinki",
            billing_country="FI",
            tax_id="FI20774740",
        )
        db.session.add(user)
        db.session.flush()
        subscribe(db.session, user, find_plan(db.session, "pro"), utcnow(), BillingSettings(seller_country="FI"))
        db.session.commit()
    page = open_page(phone=phone)
    log_in(page, base, email, password)
    click(page, "Invoices")
    page.get_by_role("heading", name="Invoices").first.wait_for()
    page.get_by_role("link", name="INV-").first.click()
    page.get_by_role("heading", name="INV-").first.wait_for()
    text = page.inner_text("main")
    # (On a phone the table's labels are drawn from data-label attributes, not text.)
    labels = () if phone else ("Subtotal", "VAT 25.5 % on $29.00")
    for expected in ("Virtanen Oy", "Tax ID FI20774740", "25.5 %", "$7.40", "$36.40", *labels):
        assert expected in text, expected
    shot(page, f"invoice-taxed-{'phone' if phone else 'desktop'}")
