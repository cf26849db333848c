"""Staff correct a paid invoice in the console (a credit note refunded, then a refund of the
rest), by clicking, with JavaScript on and off; the customer sees both on the invoice page,
on a phone too. Under gunicorn, demo payments."""

from __future__ import annotations

import re

import pytest

from portal.billing.checkouts import PAID, Checkout
from portal.billing.invoices import fulfil
from portal.billing.settings import BillingSettings
from portal.extensions import db
from portal.models import Invoice, User, utcnow
from tests.browser.conftest import STAFF, click, log_in, shot

pytestmark = pytest.mark.browser


def paid_invoice(app, email: str) -> str:
    """The customer's first invoice, paid through the demo checkout; its number."""
    from sqlalchemy import select

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        invoice = db.session.scalar(select(Invoice).where(Invoice.user_id == user.id))
        checkout = Checkout("demo", f"demo_paid_{invoice.id}", invoice.id, invoice.total, invoice.currency, PAID)
        fulfil(db.session, checkout, utcnow(), BillingSettings())
        db.session.commit()
        return invoice.number


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_staff_credit_and_refund_a_paid_invoice_and_the_customer_sees_it(served, open_page, make_customer, js):
    app, base = served
    name = "js" if js else "nojs"
    email, password = make_customer(f"credit-{name}@example.com", plan="pro")
    number = paid_invoice(app, email)

    staff = open_page(js=js)
    log_in(staff, base, *STAFF)
    staff.wait_for_url(f"{base}/admin/")
    staff.locator("nav").get_by_role("link", name="Invoices", exact=True).click()
    staff.get_by_placeholder("Invoice number or customer email").fill(number)
    staff.get_by_placeholder("Invoice number or customer email").press("Enter")
    staff.get_by_title("View Record").first.click()
    staff.get_by_role("link", name="Credit note…").click()
    staff.get_by_role("heading", name=f"Credit note for {number}").wait_for()

    # The error path: no reason given. The form answers 422 and says why, keeping what was typed.
    staff.get_by_label(re.compile("^Only these amounts")).check()
    staff.get_by_label("Credit on Pro plan").fill("10.00")
    click(staff, "Issue credit note", "button")
    staff.get_by_text("Give a reason for the credit note.").wait_for()
    assert staff.get_by_label("Credit on Pro plan").input_value() == "10.00"
    shot(staff, f"admin-credit-note-error-{name}")

    staff.get_by_label("Reason (shown to the customer)").fill("Two days of outage")
    staff.get_by_label(re.compile("^Only these amounts")).check()
    staff.get_by_label(re.compile("^Back to the customer")).check()
    click(staff, "Issue credit note", "button")
    staff.get_by_text(re.compile(r"Credit note CN-\d{6} for \$10\.00 issued\. Refund: \$10\.00 succeeded")).wait_for()
    shot(staff, f"admin-credit-note-issued-{name}")

    # The rest of the payment, refunded from the payments table (all of what is left).
    staff.get_by_label("Amount to refund").fill("19.00")
    click(staff, "Refund", "button")
    staff.get_by_text("Refund of $19.00 succeeded.").wait_for()
    assert staff.get_by_role("button", name="Refund").count() == 0  # nothing left to refund
    shot(staff, f"admin-refunded-{name}")

    for phone in (False, True):
        customer = open_page(js=js, phone=phone)
        log_in(customer, base, email, password)
        click(customer, "Invoices")
        customer.get_by_role("link", name=number).first.click()
        customer.get_by_role("heading", name="Credit notes and refunds").wait_for()
        main = customer.inner_text("main")
        assert re.search(r"Credit note CN-\d{6}", main) and "Two days of outage" in main
        assert main.count("Refunded to your card") == 2 and "\u2212$19.00" in main and "\u2212$10.00" in main
        shot(customer, f"customer-credit-note-{name}{'-phone' if phone else ''}")
