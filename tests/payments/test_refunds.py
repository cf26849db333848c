"""Credit notes and refunds from the staff console, through the real stripe SDK against the
local fake Stripe (Refund API, `charge.refunded` webhook) and through the demo provider."""

from __future__ import annotations

import flask
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.billing.checkouts import PAID, Checkout
from portal.billing.invoices import fulfil
from portal.billing.settings import BillingSettings
from portal.models import CreditNote, Invoice, OutboundEvent, Payment, Refund, WebhookEvent
from tests.conftest import login, utc
from tests.payments.fake_stripe import FakeStripe, event, signed

SECRET = "whsec_current"


@pytest.fixture(autouse=True)
def each_request_loads_its_own_user(monkeypatch):
    """Requests share the tests' app context (and so `g`): a customer's and staff's client take
    turns here, so Flask-Login's cached user is dropped before each request."""
    opened = FlaskClient.open

    def fresh(self, *args, **kwargs):
        flask.g.pop("_login_user", None)
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(FlaskClient, "open", fresh)


@pytest.fixture()
def stripe_on(config):
    fake = FakeStripe()
    base = fake.start()
    config.update(STRIPE_SECRET_KEY="sk_test_123", STRIPE_API_BASE=base, STRIPE_WEBHOOK_SECRET=SECRET)
    yield fake
    fake.stop()


@pytest.fixture()
def console(app, session, make_user):
    staff = make_user(email="staff@example.com", is_staff=True)
    session.commit()
    client = app.test_client()
    login(client, staff)
    return client


def deliver(client, payload):
    body, header = signed(payload, SECRET)
    return client.post(
        "/stripe/webhook", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )


def paid_through_stripe(client, stripe_on) -> str:
    assert client.post("/invoices/1/pay").status_code == 303
    sid = list(stripe_on.sessions)[-1]
    stripe_on.complete(sid)
    assert deliver(client, event("evt_paid", "checkout.session.completed", sid)).status_code == 200
    return sid


def refund_events(session) -> int:
    return session.scalar(select(func.count()).select_from(OutboundEvent).where(OutboundEvent.type == "refund.created"))


def test_a_credit_note_on_a_stripe_payment_refunds_through_the_refund_api(
    client, customer, stripe_on, console, session, listener
):
    sid = paid_through_stripe(client, stripe_on)
    answer = console.post(
        "/admin/invoice/credit-note/?id=1",
        data={"reason": "Outage in March", "whole": "", "line-1": "10.00", "outcome": "refund"},
    )
    assert answer.status_code == 302
    note = session.scalar(select(CreditNote))
    assert (note.number, note.total, note.outcome) == ("CN-000001", 1000, "refund")
    [refund] = session.scalars(select(Refund)).all()
    [stripe_refund] = stripe_on.refunds.values()
    assert (stripe_refund["amount"], stripe_refund["payment_intent"]) == (1000, f"pi_{sid[3:]}")
    assert stripe_refund["metadata"] == {"refund_id": str(refund.id)}
    call = [r for r in stripe_on.requests if r["path"] == "/v1/refunds"][-1]
    assert call["idempotency_key"] == f"refund-{refund.id}"
    assert (refund.status, refund.provider_ref, refund.amount) == ("succeeded", stripe_refund["id"], 1000)
    assert refund_events(session) == 1
    # The customer sees the credit note (and its PDF link) and the refund on the invoice page.
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "Credit note CN-000001" in page and "Outage in March" in page and "Refunded to your card" in page
    assert "/invoices/1/credit-notes/1/pdf" in page
    # The console shows them too, and the rest of the payment can still be refunded.
    details = console.get("/admin/invoice/details/?id=1").get_data(as_text=True)
    assert "CN-000001" in details and "Refund " + stripe_refund["id"] in details


def test_a_pending_stripe_refund_is_settled_once_by_the_charge_refunded_webhook(
    client, customer, stripe_on, console, session, listener
):
    paid_through_stripe(client, stripe_on)
    stripe_on.refund_status = "pending"
    payment = session.scalar(select(Payment))
    assert console.post(f"/admin/invoice/refund/?payment={payment.id}", data={"amount": ""}).status_code == 302
    refund = session.scalar(select(Refund))
    assert (refund.status, refund.amount) == ("pending", 2900) and refund_events(session) == 0
    charge = stripe_on.settle_refund(refund.provider_ref)
    payload = event("evt_refunded", "charge.refunded", charge)
    payload["data"]["object"]["object"] = "charge"
    assert deliver(client, payload).status_code == 200
    again = deliver(client, payload)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert deliver(client, {**payload, "id": "evt_refunded_2"}).status_code == 200  # a second event, same refund
    session.expire_all()
    assert session.get(Refund, refund.id).status == "succeeded" and refund_events(session) == 1
    assert session.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.type == "charge.refunded"))


def test_the_webhook_trusts_stripe_not_the_payload(client, customer, stripe_on, console, session):
    paid_through_stripe(client, stripe_on)
    stripe_on.refund_status = "pending"
    payment = session.scalar(select(Payment))
    console.post(f"/admin/invoice/refund/?payment={payment.id}", data={"amount": "5.00"})
    refund = session.scalar(select(Refund))
    charge = stripe_on.refunds[refund.provider_ref]["charge"]
    payload = event(
        "evt_lie", "charge.refunded", charge, refunds={"data": [{"id": refund.provider_ref, "status": "succeeded"}]}
    )
    assert deliver(client, payload).status_code == 200
    session.expire_all()
    assert session.get(Refund, refund.id).status == "pending"  # Stripe still says pending


def test_never_more_than_was_paid(client, customer, stripe_on, console, session):
    paid_through_stripe(client, stripe_on)
    payment = session.scalar(select(Payment))
    console.post(f"/admin/invoice/refund/?payment={payment.id}", data={"amount": "20.00"})
    answer = console.post(
        f"/admin/invoice/refund/?payment={payment.id}", data={"amount": "10.00"}, follow_redirects=True
    )
    assert "At most $9.00 of this payment can still be refunded." in answer.get_data(as_text=True)
    console.post(f"/admin/invoice/refund/?payment={payment.id}", data={"amount": ""})
    assert [r.amount for r in session.scalars(select(Refund).order_by(Refund.id))] == [2000, 900]
    assert sum(r["amount"] for r in stripe_on.refunds.values()) == 2900
    bad = console.post(f"/admin/invoice/refund/?payment={payment.id}", data={"amount": "abc"}, follow_redirects=True)
    assert bad.status_code == 200 and "is not an amount" in bad.get_data(as_text=True)
    assert console.post(f"/admin/invoice/refund/?payment={payment.id}", data={"amount": "1\x00"}).status_code == 400


def test_a_duplicate_payment_is_refunded_in_one_click_through_the_demo_provider(
    client, customer, console, session, listener
):
    settings = BillingSettings()
    now = utc(2024, 1, 11, 9)
    fulfil(session, Checkout("demo", "demo_first", 1, 2900, "USD", PAID), now, settings)
    duplicate = fulfil(session, Checkout("demo", "demo_second", 1, 2900, "USD", PAID), now, settings)
    session.commit()
    assert duplicate.flag == "invoice was already paid: refund the duplicate"
    details = console.get("/admin/invoice/details/?id=1").get_data(as_text=True)
    assert "Refund $29.00" in details
    assert console.post(f"/admin/invoice/refund/?payment={duplicate.id}").status_code == 302
    assert console.post(f"/admin/invoice/refund/?payment={duplicate.id}").status_code == 302  # a second click
    [refund] = session.scalars(select(Refund)).all()
    assert (refund.payment_id, refund.amount, refund.status, refund.provider_ref) == (
        duplicate.id,
        2900,
        "succeeded",
        f"re_demo_{refund.id}",
    )
    assert refund.reason == duplicate.flag and refund_events(session) == 1
    assert session.get(Invoice, 1).status == "paid"


def test_credit_note_form_errors_answer_422_and_write_nothing(client, customer, console, session):
    answer = console.post("/admin/invoice/credit-note/?id=1", data={"reason": "", "whole": "1"})
    assert answer.status_code == 422 and "Give a reason" in answer.get_data(as_text=True)
    answer = console.post("/admin/invoice/credit-note/?id=1", data={"reason": "x", "whole": "", "line-1": "ten"})
    assert answer.status_code == 422 and "is not an amount" in answer.get_data(as_text=True)
    for huge in ("1e999", "Infinity", "NaN", "0.001"):
        answer = console.post("/admin/invoice/credit-note/?id=1", data={"reason": "x", "whole": "", "line-1": huge})
        assert answer.status_code == 422, huge
    answer = console.post("/admin/invoice/credit-note/?id=1", data={"reason": "x", "whole": "", "line-1": "30.00"})
    assert answer.status_code == 422 and "at most" in answer.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(CreditNote)) == 0
    assert console.get("/admin/invoice/credit-note/?id=99999999999999999999").status_code == 404


def test_an_unpaid_invoice_credited_in_full_is_settled_and_asks_for_nothing(client, customer, console, session):
    answer = console.post("/admin/invoice/credit-note/?id=1", data={"reason": "Signed up by mistake", "whole": "1"})
    assert answer.status_code == 302
    invoice = session.get(Invoice, 1)
    session.refresh(invoice)
    assert (invoice.status, invoice.credited_cents, invoice.amount_due) == ("paid", 2900, 0)
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "Credit note CN-000001" in page and "Taken off the amount due" in page and "Pay $" not in page


def test_a_customer_never_sees_another_customers_credit_note(client, customer, console, session, make_user):
    console.post("/admin/invoice/credit-note/?id=1", data={"reason": "r", "whole": "1"})
    assert client.get("/invoices/1/credit-notes/2/pdf").status_code == 404
    other = make_user(email="eve@example.com")
    session.commit()
    login(client, other)
    assert client.get("/invoices/1/credit-notes/1/pdf").status_code == 404


def test_the_credit_note_pdf_names_the_invoice_it_corrects(client, customer, console, session):
    import io

    from pypdf import PdfReader

    from portal.documents import pdf

    if not pdf.available():
        pytest.fail("PDF rendering needs Pango on this machine")
    console.post("/admin/invoice/credit-note/?id=1", data={"reason": "Billed twice", "whole": "", "line-1": "4.50"})
    answer = client.get("/invoices/1/credit-notes/1/pdf")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert 'filename="CN-000001.pdf"' in answer.headers["Content-Disposition"]
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(answer.data)).pages)
    for expected in ("credit note", "cn-000001", "corrects invoice", "inv-000001", "billed twice", "$4.50"):
        assert expected in text.lower(), (expected, text)  # headings are upper-cased by the style sheet
    assert "please pay" not in text.lower() and "PAID" not in text
    invoice_pdf = client.get("/invoices/1/pdf")
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(invoice_pdf.data)).pages)
    assert "credit note cn-000001" in text.lower() and "amount due (usd) $24.50" in text.lower()
    assert console.get("/admin/invoice/credit-note-pdf/?id=1").status_code == 200
