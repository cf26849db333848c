"""Every change of an invoice's state, and every question about one.

Plain functions taking the session and `now`; they flush, the caller's unit of work
commits. A staff action names its `actor_id` and writes its audit entry here, in the
same transaction as the change it records.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ..models import INV_PAYABLE, INV_VOID, NOTE_REMINDER, Invoice, Notification
from . import audit, dunning
from .settings import BillingSettings


def void(session: Session, invoice: Invoice, now: dt.datetime, settings: BillingSettings,
         actor_id: int | None = None) -> bool:
    """Void a payable invoice (the customer is no longer asked to pay it); False if it is not payable."""
    if invoice.status not in INV_PAYABLE:
        return False
    invoice.status, invoice.voided_at = INV_VOID, now
    audit.record(session, actor_id, "void", invoice, now=now)
    session.flush()
    dunning.settle(session, invoice.subscription_id, now.date(), settings)
    return True


def send_reminder(session: Session, invoice: Invoice, now: dt.datetime, actor_id: int | None = None) -> bool:
    """Queue a reminder for a payable invoice now, outside the schedule; False if it is not payable."""
    if invoice.status not in INV_PAYABLE:
        return False
    # A reminder sent by hand has a step of its own (the time), so it never collides
    # with the scheduled steps.
    session.add(Notification(user_id=invoice.user_id, invoice_id=invoice.id, kind=NOTE_REMINDER,
                             step=int(now.timestamp()), created_at=now))
    audit.record(session, actor_id, "send_reminder", invoice, now=now)
    session.flush()
    return True
