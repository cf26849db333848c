"""The daily chain, in order: bill, then each step after billing (mark overdue and past
due, queue notices).

This is the one definition of the order. `run_day` (`flask billing run`) runs it in
one process; the jobs (portal/jobs/tasks.py) fan the billing out and then enqueue one
job per step of AFTER_BILLING, each depending on the one before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from ..models import DbSession
from . import collection, dunning
from .invoicing import run_billing
from .settings import BillingSettings


def mark_overdue_and_past_due(session: DbSession, now: dt.datetime, settings: BillingSettings) -> dict[str, int]:
    today = now.date()
    return {
        "overdue": dunning.mark_overdue(session, today, now),
        "past_due": dunning.mark_past_due(session, today, settings, now),
        "ended_unpaid": collection.end_unpaid(session, now, settings),
    }


def queue_notices(session: DbSession, now: dt.datetime, settings: BillingSettings) -> dict[str, int]:
    return {
        "issued_notices": dunning.queue_issue_notices(session, now),
        "reminders": dunning.queue_reminders(session, now, settings),
        "card_expiry_notices": collection.queue_card_expiry_notices(session, now),
    }


@dataclass(frozen=True)
class Step:
    """A step of the day after billing: it flushes, the caller commits it on its own."""

    name: str
    run: Callable[[DbSession, dt.datetime, BillingSettings], dict[str, int]]


AFTER_BILLING: tuple[Step, ...] = (
    Step("overdue", mark_overdue_and_past_due),
    Step("notices", queue_notices),
)


def step_named(name: str) -> Step:
    return next(step for step in AFTER_BILLING if step.name == name)


def run_day(
    session: DbSession, now: dt.datetime, settings: BillingSettings, commit: Callable[[], None]
) -> dict[str, int]:
    """Everything billing does for one day, in order; each step is its own transaction."""
    billed = run_billing(session, now, settings, commit)
    counts = {"invoices": billed.invoices, "ended": billed.ended, "chunks": billed.chunks}
    for step in AFTER_BILLING:
        counts.update(step.run(session, now, settings))
        commit()
    return counts
