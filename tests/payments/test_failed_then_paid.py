"""A payment recorded as failed becomes paid when Stripe later says the money came in.

The real stripe SDK against the local fake Stripe: the sequence is completed (unpaid) →
async_payment_failed → the session turns paid → async_payment_succeeded. The re-fetched
session decides, whatever was recorded before.
"""

from __future__ import annotations

from sqlalchemy import func, select

from portal.billing.checkouts import PAID, Checkout
from portal.billing.invoices import fulfil, record_manual_payment
from portal.models import Invoice, Notification, Payment
from tests.conftest import utc
from tests.payments.fake_stripe import event
from tests.payments.test_stripe import deliver, fake_stripe, started_session, stripe_on  # noqa: F401


def failed_payment(client, stripe_on, session) -> str:
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, paid=False)
    assert deliver(client, event("evt_1", "checkout.session.completed", sid)).status_code == 200
    assert session.scalar(select(Payment)).status == "pending"
    assert deliver(client, event("evt_2", "checkout.session.async_payment_failed", sid)).status_code == 200
    session.expire_all()
    assert session.scalar(select(Payment)).status == "failed"
    assert session.get(Invoice, 1).status == "open"
    return sid


def receipts(session) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "receipt"))


def test_a_failed_payment_that_stripe_later_reports_paid_pays_the_invoice(client, customer, stripe_on, session):
    sid = failed_payment(client, stripe_on, session)
    stripe_on.complete(sid, paid=True)
    assert deliver(client, event("evt_3", "checkout.session.async_payment_succeeded", sid)).status_code == 200
    session.expire_all()
    [payment] = session.scalars(select(Payment)).all()
    invoice = session.get(Invoice, 1)
    assert (payment.status, payment.flag) == ("succeeded", None)
    assert invoice.status == "paid" and invoice.paid_at is not None and receipts(session) == 1
    # Idempotent afterwards: any repeat, even a late failure, changes nothing.
    for n, kind in enumerate(["async_payment_succeeded", "completed", "async_payment_failed"], start=4):
        assert deliver(client, event(f"evt_{n}", f"checkout.session.{kind}", sid)).status_code == 200
    session.expire_all()
    assert session.scalar(select(Payment)).status == "succeeded" and session.get(Invoice, 1).status == "paid"
    assert session.scalar(select(func.count()).select_from(Payment)) == 1 and receipts(session) == 1


def test_the_return_page_also_turns_a_failed_payment_into_paid(client, customer, stripe_on, session):
    sid = failed_payment(client, stripe_on, session)
    stripe_on.complete(sid, paid=True)
    response = client.get(f"/payments/return?invoice_id=1&session_id={sid}")
    assert response.status_code == 200
    session.expire_all()
    assert session.scalar(select(Payment)).status == "succeeded" and session.get(Invoice, 1).status == "paid"


def test_a_failed_payment_stays_failed_while_stripe_does_not_say_paid(client, customer, stripe_on, session):
    sid = failed_payment(client, stripe_on, session)  # Stripe: complete, still unpaid
    assert deliver(client, event("evt_3", "checkout.session.completed", sid)).status_code == 200
    session.expire_all()
    assert session.scalar(select(Payment)).status == "failed" and session.get(Invoice, 1).status == "open"


def test_paid_after_the_invoice_was_paid_another_way_is_recorded_as_a_flagged_duplicate(
    client, customer, stripe_on, session, settings, make_user
):
    sid = failed_payment(client, stripe_on, session)
    staff = make_user(email="staff@example.com", is_staff=True)
    record_manual_payment(session, session.get(Invoice, 1), "bank transfer", staff.id, utc(2024, 1, 20), settings)
    session.commit()
    stripe_on.complete(sid, paid=True)
    assert deliver(client, event("evt_3", "checkout.session.async_payment_succeeded", sid)).status_code == 200
    session.expire_all()
    stripe_payment = session.scalar(select(Payment).where(Payment.provider_ref == sid))
    assert stripe_payment.status == "succeeded"
    assert stripe_payment.flag == "invoice was already paid: refund the duplicate"
    assert session.get(Invoice, 1).status == "paid" and receipts(session) == 1


def test_fulfil_itself_revives_a_failed_payment_once(session, customer, settings):
    invoice = session.get(Invoice, 1)
    session.add(
        Payment(
            invoice_id=invoice.id,
            provider="stripe",
            provider_ref="cs_1",
            amount=invoice.total,
            currency=invoice.currency,
            status="failed",
            created_at=utc(2024, 1, 11),
        )
    )
    session.commit()
    paid = Checkout("stripe", "cs_1", invoice.id, invoice.total, invoice.currency, PAID)
    for _ in range(2):
        payment = fulfil(session, paid, utc(2024, 1, 12), settings)
        session.commit()
        assert payment.status == "succeeded" and payment.flag is None
    assert session.get(Invoice, 1).status == "paid" and receipts(session) == 1
