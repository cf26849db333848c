"""Staff download any invoice's PDF (and a paid one's receipt) from the console."""

import io

import pytest
from pypdf import PdfReader

from portal.billing import invoices
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.documents import pdf
from portal.models import Invoice
from tests.conftest import service_unavailable, utc


@pytest.fixture(autouse=True)
def pdf_renderer():
    if not pdf.available():
        service_unavailable("PDF rendering (Pango)", RuntimeError(pdf.INSTALL_HINT))


def test_staff_download_an_invoice_and_a_paid_ones_receipt(client, session, staff, make_user):
    ada = make_user(email="ada@example.com", name="Ada")
    subscribe(session, ada, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings())
    session.commit()
    details = client.get("/admin/invoice/details/?id=1").get_data(as_text=True)
    assert "/admin/invoice/pdf/?id=1" in details and "kind=receipt" not in details
    response = client.get("/admin/invoice/pdf/?id=1")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'
    text = " ".join(PdfReader(io.BytesIO(response.get_data())).pages[0].extract_text().split())
    assert "ada@example.com" in text and "INV-000001" in text and "$29.00" in text
    assert client.get("/admin/invoice/pdf/?id=1&kind=receipt").status_code == 404  # not paid yet
    assert client.get(f"/admin/invoice/pdf/?id={2**70}").status_code == 404
    invoices.record_manual_payment(
        session, session.get(Invoice, 1), "wire 7", staff.id, utc(2024, 3, 5, 12), BillingSettings()
    )
    session.commit()
    assert "kind=receipt" in client.get("/admin/invoice/details/?id=1").get_data(as_text=True)
    receipt = client.get("/admin/invoice/pdf/?id=1&kind=receipt")
    assert receipt.status_code == 200 and "Receipt-INV-000001.pdf" in receipt.headers["Content-Disposition"]


def test_customers_cannot_use_the_console_download(app, session, make_user):
    from tests.conftest import login

    ada = make_user(email="ada@example.com")
    subscribe(session, ada, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings())
    session.commit()
    client = app.test_client()
    assert client.get("/admin/invoice/pdf/?id=1").status_code in (302, 303, 401, 403)
    login(client, ada)
    assert client.get("/admin/invoice/pdf/?id=1").status_code in (302, 303, 401, 403)
