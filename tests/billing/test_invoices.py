"""The invoice lifecycle's questions and staff actions (portal/billing/invoices.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.billing.checkouts import PAID, Checkout
from portal.billing.errors import BillingError
from portal.billing.invoices import fulfil, record_manual_payment, send_reminder, unpayable_reason, void
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import AuditEntry, Invoice, Notification, Payment
from tests.conftest import utc


@pytest.fixture()
def invoice(session, make_user, settings) -> Invoice:
    """A customer's first invoice: INV-000001, open, $29.00."""
    subscribe(session, make_user(email="ada@example.com"), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    session.commit()
    return session.get(Invoice, 1)


@pytest.fixture()
def staff(make_user):
    return make_user(email="staff@example.com", is_staff=True)


@pytest.mark.parametrize(
    "status, paid_at, reason",
    [
        ("open", None, None),
        ("overdue", None, None),
        ("paid", utc(2024, 1, 12, 15), "Invoice INV-000007 is already paid (on Jan 12, 2024): nothing more is due."),
        ("paid", None, "Invoice INV-000007 is already paid: nothing more is due."),
        ("void", None, "Invoice INV-000007 was voided; there is nothing to pay."),
    ],
)
def test_whether_an_invoice_is_payable_and_why_not(status, paid_at, reason):
    """A plain question about an invoice: no session, no app."""
    assert unpayable_reason(Invoice(id=7, number="INV-000007", status=status, paid_at=paid_at)) == reason


def test_marking_paid_records_one_manual_payment_and_its_audit_entry(session, invoice, staff, settings):
    payment = record_manual_payment(session, invoice, "bank transfer 8812", staff.id, utc(2024, 1, 20), settings)
    session.commit()
    assert invoice.status == "paid" and invoice.paid_at == utc(2024, 1, 20)
    assert (payment.provider, payment.status, payment.amount, payment.note, payment.recorded_by_id) == (
        "manual",
        "succeeded",
        invoice.total,
        "bank transfer 8812",
        staff.id,
    )
    [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.actor_id, entry.action, entry.object_type, entry.object_id) == (staff.id, "mark_paid", "Invoice", 1)
    assert entry.detail == f"payment {payment.provider_ref}: bank transfer 8812"
    assert entry.created_at == utc(2024, 1, 20)


@pytest.mark.parametrize("status", ["paid", "void"])
def test_an_invoice_that_is_not_payable_cannot_be_marked_paid(session, invoice, staff, settings, status):
    invoice.status = status
    session.commit()
    with pytest.raises(BillingError) as refused:
        record_manual_payment(session, invoice, "again", staff.id, utc(2024, 1, 20), settings)
    assert refused.value.code == "not_payable" and refused.value.message == unpayable_reason(invoice)
    assert session.scalar(select(func.count()).select_from(Payment)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def paid_elsewhere(new_session, settings, invoice_id: int) -> None:
    """The customer pays in another session (a webhook, the return page) and commits."""
    with new_session() as other:
        checkout = Checkout("demo", "demo_paid", invoice_id, 2900, "USD", PAID)
        fulfil(other, checkout, utc(2024, 1, 11), settings)
        other.commit()


def test_staff_cannot_void_an_invoice_paid_since_they_loaded_it(session, new_session, invoice, staff, settings):
    stale = session.get(Invoice, invoice.id)  # the console's copy: open
    paid_elsewhere(new_session, settings, invoice.id)
    assert void(session, stale, utc(2024, 1, 12), settings, staff.id) is False
    session.commit()
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "paid"
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_staff_cannot_mark_paid_an_invoice_paid_since_they_loaded_it(session, new_session, invoice, staff, settings):
    stale = session.get(Invoice, invoice.id)
    paid_elsewhere(new_session, settings, invoice.id)
    with pytest.raises(BillingError, match="already paid"):
        record_manual_payment(session, stale, "bank transfer", staff.id, utc(2024, 1, 12), settings)
    session.rollback()
    assert session.scalars(select(Payment.provider)).all() == ["demo"]


def test_two_reminders_by_hand_in_the_same_second_queue_one(session, invoice, staff):
    moment = utc(2024, 1, 12, 9)
    assert send_reminder(session, invoice, moment, staff.id) is True
    assert send_reminder(session, invoice, moment, staff.id) is False  # not an IntegrityError
    session.commit()
    assert session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "reminder")) == 1
