"""Every change of an invoice's state, and every question about one.

Plain functions taking the session and `now`; they flush, the caller's unit of work
commits. A staff action names its `actor_id` and writes its audit entry here, in the
same transaction as the change it records.

Paying: fulfil() is the one place a checkout turns into a Payment and a paid invoice.
It is called by the webhook, the return page and the demo checkout, in any order and
any number of times: the Payment's unique provider_ref and a row lock on the invoice
make every repeat a no-op. The provider's fetched state decides: a payment recorded as
failed becomes succeeded when the checkout is later reported PAID (money received is
always recorded); nothing turns a succeeded payment back.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..models import (
    INV_PAID,
    INV_PAYABLE,
    INV_VOID,
    NOTE_RECEIPT,
    NOTE_REMINDER,
    PAY_FAILED,
    PAY_PENDING,
    PAY_SUCCEEDED,
    DbSession,
    Invoice,
    Notification,
    Payment,
)
from . import audit, dunning, events
from .checkouts import FAILED, PAID, PROCESSING, Checkout
from .errors import BillingError
from .settings import BillingSettings

log = logging.getLogger(__name__)


def is_payable(invoice: Invoice) -> bool:
    """Whether the customer is asked to pay it (open or overdue): the one answer, which
    pages read too (`{% if invoice is payable %}`)."""
    return invoice.status in INV_PAYABLE


def unpayable_reason(invoice: Invoice) -> str | None:
    """None when the invoice can be paid; otherwise why not, in words to show the payer."""
    if is_payable(invoice):
        return None
    if invoice.status == INV_PAID:
        paid_on = f" (on {invoice.paid_at:%b %-d, %Y})" if invoice.paid_at else ""
        return f"Invoice {invoice.number} is already paid{paid_on}: nothing more is due."
    if invoice.status == INV_VOID:
        return f"Invoice {invoice.number} was voided; there is nothing to pay."
    return f"Invoice {invoice.number} is {invoice.status}; there is nothing to pay."


def locked(session: DbSession, invoice_id: int) -> Invoice | None:
    """The invoice, row-locked and re-read, for a change of state decided on its status.

    Every such change starts here. populate_existing: the caller may hold a copy loaded
    before the lock (a page, the console); deciding on that stale copy ("open") would
    void or mark paid an invoice the customer paid meanwhile, or record the money twice.
    """
    return session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )


def fulfil(session: DbSession, checkout: Checkout, now: dt.datetime, settings: BillingSettings) -> Payment | None:
    """Record what the provider says about a checkout; the caller commits."""
    if checkout.state not in (PAID, PROCESSING, FAILED) or checkout.invoice_id is None:
        return None
    # Two deliveries at once queue on the lock; the second sees the first's Payment.
    invoice = locked(session, checkout.invoice_id)
    if invoice is None:
        log.warning("checkout %s names unknown invoice %s", checkout.ref, checkout.invoice_id)
        return None
    payment = session.scalar(select(Payment).where(Payment.provider_ref == checkout.ref))
    if payment is None:
        payment = Payment(
            invoice_id=invoice.id,
            provider=checkout.provider,
            provider_ref=checkout.ref,
            amount=checkout.amount,
            currency=checkout.currency,
            status=PAY_PENDING,
            created_at=now,
        )
        session.add(payment)
    elif payment.status == PAY_SUCCEEDED:
        return payment  # already final: a repeat or late message changes nothing
    elif payment.status == PAY_FAILED and checkout.state != PAID:
        return payment  # still failed: only money received (a PAID checkout) revives it
    payment.updated_at = now

    if checkout.state == PROCESSING:
        return _flush(session, payment)
    if checkout.state == FAILED:
        payment.status = PAY_FAILED
        return _flush(session, payment)

    payment.status = PAY_SUCCEEDED
    # What was asked: the total less credit notes and the credit balance applied (billing/credits.py).
    owed = invoice.total - invoice.credited_cents - invoice.credit_applied_cents
    if (checkout.amount, checkout.currency.upper()) != (owed, invoice.currency):
        payment.flag = (
            f"amount mismatch: paid {checkout.amount} {checkout.currency}, invoice is {owed} {invoice.currency}"
        )
    elif invoice.status == INV_VOID:
        payment.flag = "paid an invoice that was voided"
    elif invoice.status == INV_PAID:
        payment.flag = "invoice was already paid: refund the duplicate"
    elif invoice.status in INV_PAYABLE:
        invoice.status, invoice.paid_at = INV_PAID, now
        session.add(
            Notification(user_id=invoice.user_id, invoice_id=invoice.id, kind=NOTE_RECEIPT, step=0, created_at=now)
        )
        _flush(session, payment)
        events.emit(
            session, events.INVOICE_PAID, events.invoice_data(invoice), now, key=f"{events.INVOICE_PAID}:{invoice.id}"
        )
        dunning.settle(session, invoice.subscription_id, now.date(), settings, now)
    if payment.flag:
        log.warning("payment %s flagged for staff: %s", checkout.ref, payment.flag)
    return _flush(session, payment)


def _flush(session: DbSession, payment: Payment) -> Payment:
    session.flush()
    return payment


def record_manual_payment(
    session: DbSession, invoice: Invoice, note: str, actor_id: int, now: dt.datetime, settings: BillingSettings
) -> Payment:
    """Staff record money received another way (bank transfer): one manual Payment, audited.

    BillingError if the invoice is not payable (nothing is recorded then).
    """
    current = locked(session, invoice.id)
    reason = unpayable_reason(current) if current is not None else "This invoice no longer exists."
    if reason is not None:
        raise BillingError(reason, "not_payable")
    checkout = Checkout(
        "manual",
        f"manual_{invoice.id}_{int(now.timestamp() * 1e6)}",
        invoice.id,
        invoice.total - invoice.credited_cents - invoice.credit_applied_cents,
        invoice.currency,
        PAID,
    )
    payment = fulfil(session, checkout, now, settings)
    assert payment is not None  # a PAID checkout of an existing invoice is always recorded
    payment.note, payment.recorded_by_id = note, actor_id
    audit.record(session, actor_id, "mark_paid", invoice, f"payment {payment.provider_ref}: {note}", now=now)
    session.flush()
    return payment


def void(
    session: DbSession, invoice: Invoice, now: dt.datetime, settings: BillingSettings, actor_id: int | None = None
) -> bool:
    """Void a payable invoice (the customer is no longer asked to pay it); False if it is not payable."""
    if locked(session, invoice.id) is None or unpayable_reason(invoice) is not None:
        return False
    invoice.status, invoice.voided_at = INV_VOID, now
    audit.record(session, actor_id, "void", invoice, now=now)
    session.flush()
    events.emit(
        session, events.INVOICE_VOIDED, events.invoice_data(invoice), now, key=f"{events.INVOICE_VOIDED}:{invoice.id}"
    )
    dunning.settle(session, invoice.subscription_id, now.date(), settings, now)
    return True


def send_reminder(session: DbSession, invoice: Invoice, now: dt.datetime, actor_id: int | None = None) -> bool:
    """Queue a reminder for a payable invoice now, outside the schedule; False if it is not
    payable, or one was queued by hand for it this very second."""
    if locked(session, invoice.id) is None or unpayable_reason(invoice) is not None:
        return False
    # A reminder sent by hand has a step of its own (the time), so it never collides
    # with the scheduled steps; two in one second are one reminder.
    try:
        with session.begin_nested():
            session.add(
                Notification(
                    user_id=invoice.user_id,
                    invoice_id=invoice.id,
                    kind=NOTE_REMINDER,
                    step=int(now.timestamp()),
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    audit.record(session, actor_id, "send_reminder", invoice, now=now)
    session.flush()
    return True
