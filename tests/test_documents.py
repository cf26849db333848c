"""Invoices and receipts as PDF files: what a customer's accountant reads in them."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from portal.billing import invoices
from portal.billing.documents import Buyer, Document, Line
from portal.billing.seller import Seller
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.billing.taxes import TaxGroup
from portal.documents import pdf
from portal.models import Invoice
from tests.conftest import login, service_unavailable, utc

ARTIFACTS = Path(__file__).parent / "artifacts"

SELLER = {
    "SELLER_NAME": "Nimbus Notes",
    "SELLER_LEGAL_NAME": "Nimbus Software Oy",
    "SELLER_ADDRESS": "Mannerheimintie 12 B\n00100 Helsinki",
    "SELLER_COUNTRY": "FI",
    "SELLER_TAX_ID": "FI12345678",
    "SELLER_EMAIL": "billing@nimbus.example",
}


@pytest.fixture(autouse=True)
def pdf_renderer():
    if not pdf.available():
        service_unavailable("PDF rendering (Pango)", RuntimeError(pdf.INSTALL_HINT))


@pytest.fixture()
def seller(config):
    config.update(SELLER)
    return Seller.from_config(config)


@pytest.fixture()
def customer(session, make_user, client, config, seller):
    """A logged-in customer on Pro whose first invoice (INV-000001) the configured seller issued."""
    user = make_user(email="ada@example.com", name="Ada")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings.from_config(config))
    session.commit()
    login(client, user)
    return user


def text_of(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def save_png(data: bytes, name: str) -> Path:
    """The first page as a PNG under tests/artifacts/, to look at as a customer would."""
    import pypdfium2

    ARTIFACTS.mkdir(exist_ok=True)
    document = pypdfium2.PdfDocument(data)
    image = document[0].render(scale=1.6).to_pil()
    path = ARTIFACTS / name
    image.save(path)
    document.close()
    return path


def test_the_invoice_pdf_names_seller_buyer_number_lines_and_total(client, customer, seller):
    response = client.get("/invoices/1/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'
    assert "no-store" in response.headers["Cache-Control"] and "private" in response.headers["Cache-Control"]
    data = response.get_data()
    assert data.startswith(b"%PDF-")
    text = text_of(data)
    for expected in (
        "Nimbus Software Oy",
        "Mannerheimintie 12 B",
        "00100 Helsinki",
        "Finland",
        "FI12345678",
        "billing@nimbus.example",
        "Ada",
        "ada@example.com",
        "INV-000001",
        "Pro plan",
        "Jan 10, 2024",
        "Feb 10, 2024",
        "$29.00",
        "DUE DATE",
    ):
        assert expected in text, (expected, text)
    assert "PAID" not in text
    save_png(data, "invoice-open.png")


def test_a_paid_invoice_says_paid_with_date_and_method_and_has_a_receipt(client, customer, seller, session):
    inv = session.get(Invoice, 1)
    invoices.record_manual_payment(session, inv, "transfer 991", None, utc(2024, 1, 15, 12), BillingSettings())
    session.commit()
    text = text_of(client.get("/invoices/1/pdf").get_data())
    assert "PAID on Jan 15, 2024 · Bank transfer / manual" in text, text
    receipt = client.get("/invoices/1/receipt/pdf")
    assert receipt.status_code == 200 and receipt.mimetype == "application/pdf"
    assert receipt.headers["Content-Disposition"] == 'attachment; filename="Receipt-INV-000001.pdf"'
    text = text_of(receipt.get_data())
    assert "RECEIPT" in text and "PAYMENT DATE" in text and "Total paid (USD)" in text and "$29.00" in text
    save_png(receipt.get_data(), "receipt.png")
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "/invoices/1/receipt/pdf" in page and "Nimbus Software Oy" in page and "FI12345678" in page


def test_a_receipt_exists_only_for_a_paid_invoice(client, customer):
    assert client.get("/invoices/1/receipt/pdf").status_code == 404


def test_someone_elses_invoice_pdf_is_not_found(client, customer, make_user, session):
    other = make_user(email="grace@example.com")
    subscribe(session, other, find_plan(session, "pro"), utc(2024, 1, 11, 9), BillingSettings())
    session.commit()
    theirs = session.scalars(select(Invoice.id).where(Invoice.user_id == other.id)).one()
    assert client.get(f"/invoices/{theirs}/pdf").status_code == 404
    assert client.get(f"/invoices/{theirs}/receipt/pdf").status_code == 404
    assert client.get(f"/invoices/{2**70}/pdf").status_code == 404


def test_logged_out_visitors_are_sent_to_log_in(app, session, customer):
    assert app.test_client().get("/invoices/1/pdf").status_code in (302, 303)


def test_tax_rows_and_buyer_details_show_when_the_invoice_has_them(app, seller):
    doc = Document(
        seller=seller,
        buyer=Buyer(
            email="ap@example.de",
            name="Grace Hopper",
            company="Hopper Compilers GmbH",
            address=("Unter den Linden 1", "10117 Berlin"),
            country="DE",
            tax_id="DE123456789",
        ),
        invoice_id=7,
        number="NIM-2024-0007",
        status="open",
        currency="EUR",
        issued_on=dt.date(2024, 3, 1),
        due_on=dt.date(2024, 3, 15),
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        lines=(
            Line("Pro plan", 1, 2900, 2900, dt.date(2024, 3, 1), dt.date(2024, 4, 1), "VAT", Decimal("25.5"), 740),
            Line("Extra seats", 3, 500, 1500, None, None, "VAT", Decimal("25.5"), 383),
        ),
        subtotal=4400,
        tax=1123,
        taxes=(TaxGroup("VAT", Decimal("25.5"), 4400, 1123),),
        total=5523,
        tax_note="Reverse charge: VAT on the second line is due from the recipient (Art. 196, 2006/112/EC).",
    )
    with app.test_request_context():
        data = pdf.render_pdf(doc)
    text = text_of(data)
    for expected in (
        "Hopper Compilers GmbH",
        "Grace Hopper",
        "Unter den Linden 1",
        "Germany",
        "DE123456789",
        "NIM-2024-0007",
        "Extra seats",
        "Subtotal",
        "€44.00",
        "VAT 25.5 %",
        "€11.23",
        "Total (EUR)",
        "€55.23",
        "Reverse charge: VAT on the second line",
    ):
        assert expected in text, (expected, text)
    save_png(data, "invoice-with-tax.png")


def test_the_api_gives_the_pdf_of_ones_own_invoice_only(client, session, make_user, seller):
    from portal.tokens import issue

    user = make_user(email="bot@example.com")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings())
    other = make_user(email="grace@example.com")
    subscribe(session, other, find_plan(session, "pro"), utc(2024, 1, 11, 9), BillingSettings())
    _, secret = issue(session, user, "test", utc(2024, 1, 1))
    session.commit()
    mine, theirs = (session.scalars(select(Invoice.id).where(Invoice.user_id == u.id)).one() for u in (user, other))
    auth = {"Authorization": f"Bearer {secret}"}
    response = client.get(f"/api/invoices/{mine}/pdf", headers=auth)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="INV-{mine:06d}.pdf"'
    assert "no-store" in response.headers["Cache-Control"]
    assert "bot@example.com" in text_of(response.get_data())
    missing = client.get(f"/api/invoices/{theirs}/pdf", headers=auth)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    unpaid = client.get(f"/api/invoices/{mine}/receipt/pdf", headers=auth)
    assert unpaid.status_code == 404 and unpaid.json["error"]["code"] == "not_paid"
    assert client.get(f"/api/invoices/{mine}/pdf").status_code == 401


def test_every_page_names_the_configured_seller(client, customer, seller):
    for path in ("/account", "/invoices", "/invoices/1", "/pricing"):
        html = client.get(path).get_data(as_text=True)
        assert "Nimbus Notes" in html and "Acme Billing" not in html, path
        assert "<title>" in html and " · Nimbus Notes</title>" in html


def test_without_pango_the_download_says_what_to_install_and_mail_goes_without_it(
    client, customer, seller, session, monkeypatch, capsys
):
    from portal.notify.outbox import deliver_pending
    from portal.notify.transport import ConsoleSender

    def missing():
        raise pdf.PdfUnavailable("PDF documents need the Pango library")

    monkeypatch.setattr(pdf, "_weasyprint", missing)
    response = client.get("/invoices/1/pdf")
    assert response.status_code == 503 and "libpango" in response.get_data(as_text=True)
    api = client.get("/api/invoices/1/pdf")
    assert api.status_code == 503 and "libpango" in api.json["error"]["message"]
    assert deliver_pending(session, ConsoleSender(), utc(2024, 1, 10, 10)) == 1
    out = capsys.readouterr().out
    assert "Invoice INV-000001 for $29.00" in out and "[attached:" not in out and "attached as a PDF" not in out


def test_a_logo_file_heads_the_pages_and_the_pdf(client, customer, seller, config):
    config["SELLER_LOGO"] = "static/favicon.svg"
    html = client.get("/invoices/1").get_data(as_text=True)
    assert '<img class="logo-img" src="/brand/logo"' in html
    logo = client.get("/brand/logo")
    assert logo.status_code == 200 and logo.mimetype == "image/svg+xml"
    data = client.get("/invoices/1/pdf").get_data()
    assert "Nimbus Notes" in text_of(data)
    save_png(data, "invoice-with-logo.png")
    config["SELLER_LOGO"] = "no/such/file.png"
    assert client.get("/brand/logo").status_code == 404
    assert client.get("/invoices/1/pdf").status_code == 200  # a missing logo is no logo
