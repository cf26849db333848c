"""Overdue marking, past-due subscriptions, and which notices are due when.

Notices are queued here as outbox rows (kind, step); portal/notify/ renders and
delivers them. uq_notifications_step makes each step happen once per invoice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, exists, literal, select, update

from ..models import (
    ATT_ACTION,
    ATT_FAILED,
    INV_OPEN,
    INV_OVERDUE,
    INV_PAYABLE,
    NOTE_ISSUED,
    NOTE_OVERDUE,
    NOTE_REMINDER,
    SUB_ACTIVE,
    SUB_PAST_DUE,
    DbSession,
    Invoice,
    Notification,
    PaymentAttempt,
    Subscription,
    UTCDateTime,
)
from . import events
from .settings import BillingSettings
from .sql import insert_ignoring_duplicates, rows_changed

I = Invoice.__table__  # noqa: E741
N = Notification.__table__
S = Subscription.__table__
A = PaymentAttempt.__table__


def _moment(today: dt.date, now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.combine(today, dt.time(), dt.UTC)


def mark_overdue(session: DbSession, today: dt.date, now: dt.datetime | None = None) -> int:
    """Open invoices whose due date has passed become overdue (an invoice.overdue event each)."""
    becoming = and_(I.c.status == INV_OPEN, I.c.due_date < today)
    events.emit_becoming_overdue(session, becoming, _moment(today, now))
    return rows_changed(session, update(I).where(becoming).values(status=INV_OVERDUE))


def _long_overdue(today: dt.date, settings: BillingSettings) -> ColumnElement[bool]:
    """Invoices overdue for so long that their subscription is past_due."""
    limit = today - dt.timedelta(days=settings.past_due_after_days)
    return and_(I.c.status == INV_OVERDUE, I.c.due_date <= limit)


def mark_past_due(session: DbSession, today: dt.date, settings: BillingSettings, now: dt.datetime | None = None) -> int:
    """Active subscriptions with an invoice overdue for too long become past_due."""
    # The long-overdue invoices are read once (an uncorrelated IN), not once per
    # subscription: with no index on invoices.subscription_id, SQLite ran the
    # correlated EXISTS as a scan of every overdue invoice per subscription.
    long_overdue = select(I.c.subscription_id).where(_long_overdue(today, settings))
    becoming = and_(S.c.status == SUB_ACTIVE, S.c.id.in_(long_overdue))
    events.emit_becoming_past_due(session, becoming, _moment(today, now))
    return rows_changed(session, update(S).where(becoming).values(status=SUB_PAST_DUE))


def _charges_exhausted() -> ColumnElement[bool]:
    """An unpaid invoice whose automatic charge failed its last retry (collection.record_outcome
    made the subscription past_due for it): paying another invoice does not settle that."""
    return and_(
        I.c.status.in_(INV_PAYABLE),
        exists().where(
            A.c.invoice_id == I.c.id,
            A.c.status.in_((ATT_FAILED, ATT_ACTION)),
            A.c.next_attempt_at.is_(None),
        ),
    )


def settle(
    session: DbSession,
    subscription_id: int | None,
    today: dt.date,
    settings: BillingSettings,
    now: dt.datetime | None = None,
) -> bool:
    """A past_due subscription with nothing long overdue, and no invoice whose automatic
    charge ran out of retries, left unpaid is active again (subscription.updated)."""
    if subscription_id is None:
        return False
    session.flush()  # Core statements do not autoflush pending ORM changes
    settled = bool(
        rows_changed(
            session,
            update(S)
            .where(
                S.c.id == subscription_id,
                S.c.status == SUB_PAST_DUE,
                ~exists().where(I.c.subscription_id == S.c.id, _long_overdue(today, settings)),
                ~exists().where(I.c.subscription_id == S.c.id, _charges_exhausted()),
            )
            .values(status=SUB_ACTIVE),
        )
    )
    if settled and (sub := session.get(Subscription, subscription_id)) is not None:
        session.refresh(sub)
        events.emit(session, events.SUBSCRIPTION_UPDATED, events.subscription_data(sub), _moment(today, now))
    return settled


def queue_issue_notices(
    session: DbSession, now: dt.datetime, *, subscription_id: int | None = None, invoice_id: int | None = None
) -> int:
    """One 'invoice issued' notice for every unpaid invoice that has none yet.

    The daily run covers every invoice; sign-up and a plan change pass the one
    subscription or invoice they just billed, so its notice goes out at once.
    """
    # uq_notifications_step alone decides "none yet": a NOT EXISTS against the table
    # this statement fills was planned as a rescan of it per invoice once it started
    # empty (quadratic: 1M invoices did not finish in 10 minutes).
    unpaid = select(I.c.user_id, I.c.id, literal(NOTE_ISSUED), literal(0), literal(now, UTCDateTime)).where(
        I.c.status.in_(INV_PAYABLE)
    )
    if subscription_id is not None:
        unpaid = unpaid.where(I.c.subscription_id == subscription_id)
    if invoice_id is not None:
        unpaid = unpaid.where(I.c.id == invoice_id)
    session.flush()  # Core statements do not autoflush pending ORM changes
    return rows_changed(
        session,
        insert_ignoring_duplicates(session, N).from_select(
            ["user_id", "invoice_id", "kind", "step", "created_at"], unpaid
        ),
    )


def queue_reminders(session: DbSession, now: dt.datetime, settings: BillingSettings) -> int:
    """Queue the reminder step each unpaid invoice has reached today.

    Step s (days from the due date) is due on due_date + s, until the next step's
    day: a run that missed days sends the latest step only, never a burst of old ones.
    """
    today = now.date()
    steps = sorted(settings.reminder_days)
    queued = 0
    for i, step in enumerate(steps):
        reached = I.c.due_date <= today - dt.timedelta(days=step)
        if i + 1 < len(steps):
            reached = and_(reached, I.c.due_date > today - dt.timedelta(days=steps[i + 1]))
        kind = NOTE_REMINDER if step <= 0 else NOTE_OVERDUE
        queued += rows_changed(
            session,
            insert_ignoring_duplicates(session, N).from_select(
                ["user_id", "invoice_id", "kind", "step", "created_at"],
                select(I.c.user_id, I.c.id, literal(kind), literal(step), literal(now, UTCDateTime)).where(
                    I.c.status.in_(INV_PAYABLE), reached
                ),
            ),
        )
    return queued
