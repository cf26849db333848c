"""A customer clicks from the front door to an invoice and downloads its PDF (and, once
paid, the receipt), with JavaScript on and off and on a phone, under gunicorn."""

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from portal.app import create_app
from portal.billing.catalog import seed_plans
from portal.documents import pdf
from portal.extensions import db
from tests.browser.conftest import click, log_in, shot
from tests.conftest import TEST_CONFIG, service_unavailable
from tests.live_server import gunicorn

pytestmark = pytest.mark.browser

SELLER = {
    "SELLER_NAME": "Nimbus Notes",
    "SELLER_LEGAL_NAME": "Nimbus Software Oy",
    "SELLER_ADDRESS": "Mannerheimintie 12 B\\n00100 Helsinki",
    "SELLER_COUNTRY": "FI",
    "SELLER_TAX_ID": "FI12345678",
    "SELLER_EMAIL": "billing@nimbus.example",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app under gunicorn with a seller configured, as a company would run it."""
    from flask_migrate import upgrade

    if not pdf.available():
        service_unavailable("PDF rendering (Pango)", RuntimeError(pdf.INSTALL_HINT))
    folder = tmp_path_factory.mktemp("documents")
    url = f"sqlite:///{folder / 'app.db'}"
    app = create_app({**TEST_CONFIG, "TESTING": False, "SQLALCHEMY_DATABASE_URI": url, **SELLER})
    with app.app_context():
        upgrade()
        seed_plans(db.session)
        db.session.commit()
    with gunicorn(url, folder / "instance", **SELLER) as base:
        app.config["PUBLIC_URL"] = base
        yield app, base


def pdf_text(download) -> str:
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF-")
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(data)).pages)


def open_first_invoice(page, base: str, email: str, password: str) -> None:
    log_in(page, base, email, password)
    assert "Nimbus Notes" in page.inner_text("header.topbar")
    click(page, "Invoices")
    page.get_by_role("heading", name="Invoices", exact=True).wait_for()
    page.get_by_role("link", name=re.compile(r"^INV-\d{6}$")).first.click()
    page.get_by_role("heading", name=re.compile(r"^INV-\d{6}$")).wait_for()
    page.get_by_role("link", name="Download PDF").wait_for()


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_customer_downloads_an_invoice_pdf_and_a_receipt(served, open_page, make_customer, js):
    _, base = served
    name = "js" if js else "nojs"
    email, password = make_customer(f"pdf-{name}@example.com", plan="pro")
    page = open_page(js=js)
    open_first_invoice(page, base, email, password)
    main = page.inner_text("main")
    assert "Nimbus Software Oy" in main and "FI12345678" in main and email in main
    assert page.get_by_role("link", name="Download receipt").count() == 0  # not paid yet
    shot(page, f"invoice-page-{name}")
    with page.expect_download() as info:
        click(page, "Download PDF")
    download = info.value
    assert re.fullmatch(r"INV-\d{6}\.pdf", download.suggested_filename)
    text = pdf_text(download)
    number = download.suggested_filename.removesuffix(".pdf")
    for expected in ("Nimbus Software Oy", "FI12345678", email, number, "Pro plan", "$29.00"):
        assert expected in text, (expected, text)
    assert "PAID" not in text
    assert page.get_by_role("link", name="Download PDF").is_visible()  # still on the invoice page
    # Paid through the demo checkout: the PDF says so, and the receipt is there.
    click(page, "Pay $29.00", "button")
    page.get_by_role("button", name="Pay $29.00").click()
    page.get_by_text("is paid").first.wait_for()
    click(page, "Invoices")
    page.get_by_role("heading", name="Invoices", exact=True).wait_for()  # the list, not the page before it
    page.get_by_role("link", name=number).first.click()
    page.get_by_role("heading", name=number).wait_for()
    page.get_by_role("link", name="Download receipt").wait_for()
    with page.expect_download() as info:
        click(page, "Download PDF")
    assert re.search(r"PAID on \w{3} \d{1,2}, \d{4} · Demo checkout", pdf_text(info.value))
    with page.expect_download() as info:
        click(page, "Download receipt")
    assert info.value.suggested_filename == f"Receipt-{number}.pdf"
    assert "RECEIPT" in pdf_text(info.value)


def test_the_invoice_page_on_a_phone(served, open_page, make_customer):
    _, base = served
    email, password = make_customer("pdf-phone@example.com", plan="pro")
    page = open_page(phone=True)
    open_first_invoice(page, base, email, password)
    assert page.get_by_role("link", name="Download PDF").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    shot(page, "invoice-page-phone")
