"""An invoice as a document (portal/billing/documents.py) and the seller's details
(portal/billing/seller.py): what the page, the PDF and the mails are made of."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from portal.billing.checkouts import PAID, Checkout
from portal.billing.documents import RECEIPT, invoice_document
from portal.billing.invoices import fulfil
from portal.billing.seller import DEFAULT_NAME, Seller
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, InvoiceLine
from tests.conftest import utc


@pytest.fixture()
def invoice(session, make_user, settings) -> Invoice:
    user = make_user(email="ada@example.com", name="Ada Lovelace")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    session.commit()
    return session.get(Invoice, 1)


def test_the_seller_comes_from_configuration():
    seller = Seller.from_config(
        {
            "SELLER_NAME": " Nimbus ",
            "SELLER_LEGAL_NAME": "Nimbus Software Oy",
            "SELLER_ADDRESS": "Street 1\\n\n00100 Helsinki\n",
            "SELLER_COUNTRY": "fi",
            "SELLER_TAX_ID": "FI12345678",
            "SELLER_EMAIL": "help@nimbus.example",
            "SELLER_LOGO": "https://cdn.example/logo.png",
            "INVOICE_PREFIX": "NIM-",
        }
    )
    assert (seller.name, seller.issuer, seller.country) == ("Nimbus", "Nimbus Software Oy", "FI")
    assert seller.address == ("Street 1", "00100 Helsinki")
    assert seller.logo_is_url
    assert Seller.from_config({}) == Seller() and Seller().issuer == DEFAULT_NAME


def test_a_period_invoice_has_one_line_for_its_plan_and_period(session, invoice):
    doc = invoice_document(invoice, Seller())
    assert (doc.number, doc.status, doc.currency, doc.total) == ("INV-000001", "open", "USD", 2900)
    assert (doc.issued_on, doc.due_on) == (dt.date(2024, 1, 10), dt.date(2024, 1, 24))
    assert [
        (ln.description, ln.quantity, ln.unit_amount, ln.amount, ln.period_start, ln.period_end) for ln in doc.lines
    ] == [("Pro plan", 1, 2900, 2900, dt.date(2024, 1, 10), dt.date(2024, 2, 10))]
    assert (doc.buyer.heading, doc.buyer.email, doc.buyer.address) == ("Ada Lovelace", "ada@example.com", ())
    assert (doc.subtotal, doc.tax, doc.is_paid, doc.paid_on) == (2900, 0, False, None)
    assert (doc.taxes, doc.has_tax) == ((), False)  # no rate: no tax rows, no "Tax 0 %"
    assert doc.filename() == "INV-000001.pdf" and doc.filename(RECEIPT) == "Receipt-INV-000001.pdf"


def test_stored_lines_are_the_documents_lines(session, invoice):
    for stored in invoice.lines:
        session.delete(stored)
    session.flush()
    session.expire(invoice, ["lines"])
    invoice.lines.extend(
        [
            InvoiceLine(position=1, description="Pro plan", quantity=1, unit_amount=2000, amount=2000),
            InvoiceLine(position=2, description="Seats", quantity=3, unit_amount=300, amount=900),
        ]
    )
    session.flush()
    doc = invoice_document(invoice, Seller())
    assert [(ln.description, ln.amount) for ln in doc.lines] == [("Pro plan", 2000), ("Seats", 900)]


def test_a_paid_invoice_names_its_payment_date_and_method(session, invoice, settings):
    fulfil(session, Checkout("stripe", "cs_1", invoice.id, 2900, "USD", PAID), utc(2024, 1, 12, 8), settings)
    doc = invoice_document(invoice, Seller())
    assert (doc.is_paid, doc.paid_on, doc.payment_method) == (True, dt.date(2024, 1, 12), "Card (Stripe)")


def test_billing_details_and_tax_are_read_when_the_models_have_them(session, invoice):
    """Columns the tax side of the product adds: shown once they exist, never required.
    An invoice issued before invoices kept their buyer (no buyer_email) shows the customer's details."""
    invoice.buyer_email = None
    for stored in invoice.lines:
        session.delete(stored)
    session.flush()
    session.expire(invoice, ["lines"])
    user = invoice.user
    user.billing_name, user.billing_company = "Ada Lovelace", "Analytical Engines Ltd"  # type: ignore[attr-defined]
    user.billing_address, user.billing_country, user.tax_id = "1 Engine Row\nLondon", "gb", "GB123456789"  # type: ignore[attr-defined]
    invoice.subtotal_cents, invoice.tax_cents, invoice.tax_note = 2417, 483, "Reverse charge"  # type: ignore[attr-defined]
    line = InvoiceLine(position=1, description="Pro plan", quantity=1, unit_amount=2417, amount=2417)
    line.tax_cents, line.tax_rate_percent, line.tax_name = 483, Decimal("20.00"), "VAT"  # type: ignore[attr-defined]
    invoice.lines.append(line)
    session.flush()
    doc = invoice_document(invoice, Seller())
    buyer = doc.buyer
    assert (buyer.heading, buyer.name, buyer.address, buyer.country, buyer.tax_id) == (
        "Analytical Engines Ltd",
        "Ada Lovelace",
        ("1 Engine Row", "London"),
        "GB",
        "GB123456789",
    )
    assert (doc.subtotal, doc.tax, doc.total, doc.tax_note, doc.has_tax) == (2417, 483, 2900, "Reverse charge", True)
    assert [(t.label, t.net, t.tax) for t in doc.taxes] == [("VAT 20 %", 2417, 483)]


def test_an_issued_invoice_keeps_the_buyer_it_was_issued_to(session, make_user, settings):
    """An issued invoice is a legal document: the customer changing their billing details
    later (a move, a new company, a VAT ID removed) must not rewrite the invoices already
    sent, whose tax (reverse charge or not) was decided on the details of that day."""
    from portal.billing.customers import update_details

    user = make_user(email="ada@example.com")
    old = {"name": "Ada Lovelace", "company": "Engines GmbH", "address": "Hauptstr. 1\nBerlin"}
    assert update_details(session, user, {**old, "country": "DE", "tax_id": "DE136695976"}) == {}
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    session.commit()
    invoice = session.get(Invoice, 1)
    assert invoice is not None and invoice.number

    new = {"name": "Ada King", "company": "", "address": "1 Engine Row\nLondon", "country": "GB", "tax_id": ""}
    assert update_details(session, user, new) == {}
    session.commit()
    session.expire_all()

    buyer = invoice_document(session.get(Invoice, 1), Seller()).buyer
    assert (buyer.name, buyer.company, buyer.address, buyer.country, buyer.tax_id) == (
        "Ada Lovelace",
        "Engines GmbH",
        ("Hauptstr. 1", "Berlin"),
        "DE",
        "DE136695976",
    )


def test_an_issued_invoice_keeps_the_seller_it_was_issued_by(session, make_user):
    """The seller moving or changing its VAT ID later does not rewrite invoices already sent;
    only the logo is always today's. Invoices from before invoices kept a copy show today's seller."""
    from portal.billing.invoicing import run_billing
    from portal.billing.settings import BillingSettings

    before = Seller("Nimbus", "Nimbus Oy", ("Street 1", "Helsinki"), "FI", "FI12345678", "help@nimbus.example")
    after = Seller("Nimbus", "Nimbus AB", ("Gatan 2", "Stockholm"), "SE", "SE123456789701", "help@nimbus.example",
                   logo="https://cdn.example/new.png")  # fmt: skip
    subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings(seller=before))
    session.commit()
    run_billing(session, utc(2024, 2, 10, 9), BillingSettings(seller=after), session.commit)
    session.expire_all()
    first, second = session.query(Invoice).order_by(Invoice.id).all()

    issued_by = invoice_document(first, after).seller
    assert (issued_by.legal_name, issued_by.address, issued_by.country, issued_by.tax_id) == (
        "Nimbus Oy", ("Street 1", "Helsinki"), "FI", "FI12345678")  # fmt: skip
    assert issued_by.logo == after.logo
    assert invoice_document(second, before).seller == dataclasses.replace(after, logo=before.logo)
    assert first.seller_id != second.seller_id

    first.seller = None  # issued before invoices kept their seller
    assert invoice_document(first, after).seller == after


def test_the_seller_settings_an_invoice_lacks_are_named():
    """`flask serve` names them at start: an EU seller's invoices need its VAT ID."""
    assert Seller().missing() == ["SELLER_NAME", "SELLER_ADDRESS", "SELLER_COUNTRY"]
    finnish = Seller("Nimbus", "Nimbus Oy", ("Street 1", "Helsinki"), "FI")
    assert finnish.missing() == ["SELLER_TAX_ID"]
    assert dataclasses.replace(finnish, tax_id="FI12345678").missing() == []
    assert dataclasses.replace(finnish, country="US").missing() == []  # no VAT ID asked outside the EU
