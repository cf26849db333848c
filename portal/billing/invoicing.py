"""The billing run: issue every due period's invoice, catch up, end cancelled subs.

The run is set-based: a chunk of subscriptions (an id range) is billed with a few
INSERT ... SELECT and UPDATE statements (on PostgreSQL, one statement does both),
one transaction per chunk. It is idempotent and restartable because the database
refuses a second invoice for a period (uq_invoices_period) and a subscription only
advances past a period whose invoice exists. Two runs at once, a re-run, or a run after a crash bill each period once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, case, func, literal, select, update

from ..models import (
    INV_OPEN,
    KIND_PERIOD,
    SUB_ACTIVE,
    SUB_CANCELED,
    SUB_TRIALING,
    DbSession,
    Invoice,
    Plan,
    Subscription,
    UTCDateTime,
)
from . import events
from .settings import BillingSettings
from .sql import add_months_sql, const, insert_ignoring_duplicates, rows_changed, supports_dml_in_cte

S = Subscription.__table__
I = Invoice.__table__  # noqa: E741
P = Plan.__table__

# The columns a run writes for each invoice it issues (the benchmark's raw baseline writes the same).
ISSUED_COLUMNS = [
    "user_id", "subscription_id", "plan_id", "kind", "description", "period_start",
    "period_end", "total", "currency", "status", "issued_at", "due_date",
]  # fmt: skip

# The plan and end of a subscription's next period: a pending downgrade applies
# from that period on.
NEXT_PLAN = func.coalesce(S.c.pending_plan_id, S.c.plan_id)
NEXT_PERIOD_END = add_months_sql(S.c.anchor, (S.c.next_period + 1) * S.c.interval_months)


@dataclass
class RunResult:
    invoices: int = 0
    ended: int = 0
    chunks: int = 0

    def add(self, other: RunResult) -> None:
        self.invoices += other.invoices
        self.ended += other.ended
        self.chunks += other.chunks


def _due(lo: int, hi: int, today: dt.date) -> ColumnElement[bool]:
    return and_(
        S.c.id.between(lo, hi),
        S.c.status != const(SUB_CANCELED),
        S.c.next_period_start <= today,
    )


def due_id_range(session: DbSession, today: dt.date) -> tuple[int, int] | None:
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


def bill_chunk(session: DbSession, lo: int, hi: int, now: dt.datetime, settings: BillingSettings) -> RunResult:
    """Bill subscriptions lo..hi as of `now`: one unit of work; the caller commits."""
    due = _due(lo, hi, now.date())
    result = RunResult(chunks=1)

    # A subscription set to cancel at period end ends when that period is over.
    ending = and_(due, S.c.cancel_at_period_end)
    events.emit_ending(session, ending, now)
    result.ended = rows_changed(
        session,
        update(S).where(ending).values(status=SUB_CANCELED, ended_at=now, pending_plan_id=None),
    )

    # One period per pass, so a subscription several periods behind catches up
    # one invoice per missed period, each with its own dates.
    # A subscription whose collection is paused gets no invoices until it is resumed.
    renewing = and_(due, ~S.c.cancel_at_period_end, S.c.paused_at.is_(None))
    while True:
        issued = _issue_next_periods(session, renewing, now, settings)
        result.invoices += issued
        if not issued and not _advance_past_billed_periods(session, renewing):
            break
    if result.invoices and not supports_dml_in_cte(session):
        # One INSERT ... SELECT for the chunk's invoices (PostgreSQL wrote them with the invoices).
        events.emit_issued(session, lo, hi, now)
    return result


def _issue_next_periods(
    session: DbSession, renewing: ColumnElement[bool], now: dt.datetime, settings: BillingSettings
) -> int:
    """Invoice the next period of each `renewing` subscription and advance it past that period.

    Returns how many were invoiced; a period invoiced already (a concurrent run
    won the insert) is not invoiced again.
    """
    insert = insert_ignoring_duplicates(session, I).from_select(
        ISSUED_COLUMNS,
        select(
            S.c.user_id,
            S.c.id,
            P.c.id,
            literal(KIND_PERIOD),
            P.c.name.concat(" plan"),
            S.c.next_period_start,
            NEXT_PERIOD_END,
            P.c.price,
            P.c.currency,
            literal(INV_OPEN),
            literal(now, UTCDateTime),
            literal(now.date() + dt.timedelta(days=settings.due_days), I.c.due_date.type),
        )
        .select_from(S.join(P, P.c.id == NEXT_PLAN))
        .where(renewing),
    )
    if supports_dml_in_cte(session):
        # One statement: the subscriptions advanced are exactly the invoices this
        # statement inserted, with no lookup of invoices (whose statistics lag
        # far behind during a big run and mislead the planner).
        # The invoice.issued events are written by the same statement, from the rows
        # it inserted (a data-modifying CTE runs whether or not it is referenced).
        issued = insert.returning(*(I.c[name] for name in events.ISSUED_EVENT_COLUMNS)).cte("issued")
        advance = _advance(S.c.id == issued.c.subscription_id, issued.c.plan_id, issued.c.period_end)
        count = rows_changed(session, advance.add_cte(events.issued_events_cte(session, issued, now)))
        if count:
            session.info[events.EMITTED] = True
        return count
    count = max(rows_changed(session, insert), 0)
    _advance_past_billed_periods(session, renewing)
    return count


def _advance_past_billed_periods(session: DbSession, renewing: ColumnElement[bool]) -> int:
    """Advance each `renewing` subscription whose next period is invoiced already.

    Only past a period whose invoice exists: a run that lost a race for the
    insert never skips a period, and a subscription left behind its invoices
    (restored from a backup, edited by hand) catches up instead of sticking.
    """
    # IN, not EXISTS: PostgreSQL turns a correlated EXISTS into a join, planned on
    # statistics that lag far behind a big run (a scan of every invoice per chunk);
    # a correlated IN stays a per-row probe of uq_invoices_period, made only for
    # the rare subscription still due.
    billed = S.c.next_period_start.in_(
        select(I.c.period_start).where(I.c.subscription_id == S.c.id, I.c.kind == const(KIND_PERIOD))
    )
    return rows_changed(session, _advance(and_(renewing, billed), NEXT_PLAN, NEXT_PERIOD_END))


def _advance(where: ColumnElement[bool], plan_id: ColumnElement[Any], period_end: ColumnElement[Any]) -> Update:
    """UPDATE moving the subscriptions matching `where` on by one period."""
    return (
        update(S)
        .where(where)
        .values(
            plan_id=plan_id,
            pending_plan_id=None,
            next_period=S.c.next_period + 1,
            current_period_start=S.c.next_period_start,
            current_period_end=period_end,
            next_period_start=period_end,
            status=case((S.c.status == SUB_TRIALING, SUB_ACTIVE), else_=S.c.status),
        )
    )


def run_billing(
    session: DbSession,
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
