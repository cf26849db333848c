"""The daily chain, in order: bill, mark overdue and past due, queue notices."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy.orm import Session

from . import dunning
from .invoicing import run_billing
from .settings import BillingSettings


def mark_overdue_and_past_due(session: Session, today: dt.date, settings: BillingSettings) -> dict:
    return {
        "overdue": dunning.mark_overdue(session, today),
        "past_due": dunning.mark_past_due(session, today, settings),
    }


def queue_notices(session: Session, now: dt.datetime, settings: BillingSettings) -> dict:
    return {
        "issued_notices": dunning.queue_issue_notices(session, now),
        "reminders": dunning.queue_reminders(session, now, settings),
    }


def run_day(
    session: Session, now: dt.datetime, settings: BillingSettings, commit: Callable[[], None]
) -> dict:
    """Everything billing does for one day; each step is its own transaction."""
    billed = run_billing(session, now, settings, commit)
    counts = {"invoices": billed.invoices, "ended": billed.ended, "chunks": billed.chunks}
    counts.update(mark_overdue_and_past_due(session, now.date(), settings))
    commit()
    counts.update(queue_notices(session, now, settings))
    commit()
    return counts
