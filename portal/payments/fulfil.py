"""fulfil(): the one place a checkout turns into a Payment and a paid invoice.

Called by the webhook, the return page and the demo checkout, in any order and
any number of times: the Payment's unique provider_ref and a row lock on the
invoice make every repeat a no-op. The provider's fetched state decides: a payment
recorded as failed becomes succeeded when the checkout is later reported PAID
(money received is always recorded); nothing turns a succeeded payment back.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..billing import dunning
from ..billing.settings import BillingSettings
from ..models import (
    INV_PAID,
    INV_PAYABLE,
    INV_VOID,
    NOTE_RECEIPT,
    PAY_FAILED,
    PAY_PENDING,
    PAY_SUCCEEDED,
    Invoice,
    Notification,
    Payment,
)
from .checkout import FAILED, PAID, PROCESSING, Checkout

log = logging.getLogger(__name__)


def fulfil(session: Session, checkout: Checkout, now: dt.datetime,
           settings: BillingSettings) -> Payment | None:
    """Record what the provider says about a checkout; the caller commits."""
    if checkout.state not in (PAID, PROCESSING, FAILED) or checkout.invoice_id is None:
        return None
    # Lock the invoice: two deliveries at once queue here, the second sees the first's Payment.
    # populate_existing: the caller may have loaded the invoice before the lock (the pay
    # pages do); without it the second would decide on that stale copy ("open"), issue a
    # second receipt, hit its unique step and lose the money it was recording.
    invoice = session.scalar(
        select(Invoice).where(Invoice.id == checkout.invoice_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    if invoice is None:
        log.warning("checkout %s names unknown invoice %s", checkout.ref, checkout.invoice_id)
        return None
    payment = session.scalar(select(Payment).where(Payment.provider_ref == checkout.ref))
    if payment is None:
        payment = Payment(invoice_id=invoice.id, provider=checkout.provider,
                          provider_ref=checkout.ref, amount=checkout.amount,
                          currency=checkout.currency, status=PAY_PENDING, created_at=now)
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
    if (checkout.amount, checkout.currency.upper()) != (invoice.total, invoice.currency):
        payment.flag = (f"amount mismatch: paid {checkout.amount} {checkout.currency}, "
                        f"invoice is {invoice.total} {invoice.currency}")
    elif invoice.status == INV_VOID:
        payment.flag = "paid an invoice that was voided"
    elif invoice.status == INV_PAID:
        payment.flag = "invoice was already paid: refund the duplicate"
    elif invoice.status in INV_PAYABLE:
        invoice.status, invoice.paid_at = INV_PAID, now
        session.add(Notification(user_id=invoice.user_id, invoice_id=invoice.id,
                                 kind=NOTE_RECEIPT, step=0, created_at=now))
        _flush(session, payment)
        dunning.settle(session, invoice.subscription_id, now.date(), settings)
    if payment.flag:
        log.warning("payment %s flagged for staff: %s", checkout.ref, payment.flag)
    return _flush(session, payment)


def _flush(session: Session, payment: Payment) -> Payment:
    session.flush()
    return payment


def record_manual_payment(session: Session, invoice: Invoice, note: str, staff_id: int,
                          now: dt.datetime, settings: BillingSettings) -> Payment:
    """Staff record money received another way (bank transfer): one manual Payment."""
    checkout = Checkout("manual", f"manual_{invoice.id}_{int(now.timestamp() * 1e6)}",
                        invoice.id, invoice.total, invoice.currency, PAID)
    payment = fulfil(session, checkout, now, settings)
    payment.note, payment.recorded_by_id = note, staff_id
    session.flush()
    return payment
