"""The billing run: issue every due period's invoice, catch up, end cancelled subs.

The run is set-based: a chunk of subscriptions (an id range) is billed with a few
INSERT ... SELECT and UPDATE statements, one transaction per chunk. It is idempotent
and restartable because the database refuses a second invoice for a period
(uq_invoices_period) and a subscription only advances past a period whose invoice
exists. Two runs at once, a re-run, or a run after a crash bill each period once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterator

from sqlalchemy import and_, case, exists, func, literal, select, update
from sqlalchemy.orm import Session

from ..models import (
    INV_OPEN,
    KIND_PERIOD,
    SUB_ACTIVE,
    SUB_CANCELED,
    SUB_TRIALING,
    Invoice,
    Plan,
    Subscription,
    UTCDateTime,
)
from .settings import BillingSettings
from .sql import add_months_sql, const, insert_ignoring_duplicates

S = Subscription.__table__
I = Invoice.__table__  # noqa: E741
P = Plan.__table__


@dataclass
class RunResult:
    invoices: int = 0
    ended: int = 0
    chunks: int = 0

    def add(self, other: "RunResult") -> None:
        self.invoices += other.invoices
        self.ended += other.ended
        self.chunks += other.chunks


def _due(lo: int, hi: int, today: dt.date):
    return and_(
        S.c.id.between(lo, hi),
        S.c.status != const(SUB_CANCELED),
        S.c.next_period_start <= today,
    )


def due_id_range(session: Session, today: dt.date) -> tuple[int, int] | None:
    """The lowest and highest id of subscriptions with something due by `today`."""
    lo, hi = session.execute(
        select(func.min(S.c.id), func.max(S.c.id)).where(
            S.c.status != const(SUB_CANCELED), S.c.next_period_start <= today
        )
    ).one()
    return None if lo is None else (lo, hi)


def id_chunks(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    """Inclusive id ranges of `size` ids covering lo..hi."""
    for start in range(lo, hi + 1, size):
        yield start, min(start + size - 1, hi)


def bill_chunk(
    session: Session, lo: int, hi: int, now: dt.datetime, settings: BillingSettings
) -> RunResult:
    """Bill subscriptions lo..hi as of `now`: one unit of work; the caller commits."""
    today = now.date()
    due = _due(lo, hi, today)
    result = RunResult(chunks=1)

    # A subscription set to cancel at period end ends when that period is over.
    result.ended = session.execute(
        update(S)
        .where(due, S.c.cancel_at_period_end)
        .values(status=SUB_CANCELED, ended_at=now, pending_plan_id=None)
    ).rowcount

    # One period per pass, so a subscription several periods behind catches up
    # one invoice per missed period, each with its own dates.
    plan_id = func.coalesce(S.c.pending_plan_id, S.c.plan_id)  # downgrades apply now
    period_end = add_months_sql(S.c.anchor, (S.c.next_period + 1) * S.c.interval_months)
    issued_at = literal(now, UTCDateTime)
    due_date = literal(today + dt.timedelta(days=settings.due_days), I.c.due_date.type)
    while True:
        issued = session.execute(
            insert_ignoring_duplicates(session, I).from_select(
                ["user_id", "subscription_id", "plan_id", "kind", "description", "period_start",
                 "period_end", "total", "currency", "status", "issued_at", "due_date"],
                select(
                    S.c.user_id, S.c.id, P.c.id, literal(KIND_PERIOD), P.c.name.concat(" plan"),
                    S.c.next_period_start, period_end, P.c.price, P.c.currency, literal(INV_OPEN),
                    issued_at, due_date,
                )
                .select_from(S.join(P, P.c.id == plan_id))
                .where(due, ~S.c.cancel_at_period_end),
            )
        ).rowcount
        result.invoices += max(issued, 0)

        # Advance only past a period whose invoice exists: a run that lost a race
        # for the insert never skips a period.
        billed = exists().where(
            I.c.subscription_id == S.c.id,
            I.c.kind == const(KIND_PERIOD),
            I.c.period_start == S.c.next_period_start,
        )
        advanced = session.execute(
            update(S)
            .where(due, ~S.c.cancel_at_period_end, billed)
            .values(
                plan_id=plan_id,
                pending_plan_id=None,
                next_period=S.c.next_period + 1,
                current_period_start=S.c.next_period_start,
                current_period_end=period_end,
                next_period_start=period_end,
                status=case((S.c.status == SUB_TRIALING, SUB_ACTIVE), else_=S.c.status),
            )
        ).rowcount
        if not advanced:
            break
    return result


def run_billing(
    session: Session,
    now: dt.datetime,
    settings: BillingSettings,
    commit: Callable[[], None],
) -> RunResult:
    """Bill every due subscription, one chunk per transaction (`commit` ends each)."""
    total = RunResult()
    span = due_id_range(session, now.date())
    if span is None:
        return total
    for lo, hi in id_chunks(*span, settings.chunk_size):
        total.add(bill_chunk(session, lo, hi, now, settings))
        commit()
    return total
