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
