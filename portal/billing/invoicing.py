"""The billing run: issue every due period's invoice, catch up, end cancelled subs.

The run is set-based: a chunk of subscriptions (an id range) is billed with a few
INSERT ... SELECT and UPDATE statements (on PostgreSQL, one statement writes the
invoices with their number, buyer and seller, their lines with their tax, and advances
the subscriptions), one transaction per chunk. The chunk first locks its due
subscriptions, then the invoice number counter if it is free (billing/numbering.py);
a chunk that finds it taken numbers its invoices at its end instead.
It is idempotent and restartable because the database refuses a second invoice for a
period (uq_invoices_period) and a subscription only advances past a period whose
invoice exists. Two runs at once, a re-run, or a run after a crash bill each period once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Update,
    and_,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)

from ..models import (
    INV_OPEN,
    INV_PAID,
    KIND_PERIOD,
    SUB_ACTIVE,
    SUB_CANCELED,
    SUB_TRIALING,
    DbSession,
    Invoice,
    InvoiceLine,
    Plan,
    Subscription,
    User,
    UTCDateTime,
)
from . import coupons, credits, events, numbering, taxes
from .numbering import Reserved
from .settings import BillingSettings
from .sql import add_months_sql, const, insert_ignoring_duplicates, rows_changed, supports_dml_in_cte

S = Subscription.__table__
I = Invoice.__table__  # noqa: E741
P = Plan.__table__
U = User.__table__
L = InvoiceLine.__table__

# The columns a run writes for each invoice it issues (the benchmark's raw baseline writes these), besides
# its buyer and seller, its number when the chunk holds the counter, and the credit it used.
ISSUED_COLUMNS = [
    "user_id", "subscription_id", "plan_id", "kind", "description", "period_start",
    "period_end", "total", "currency", "status", "issued_at", "due_date",
    "subtotal_cents", "tax_cents", "tax_note",
]  # fmt: skip
# ... and for its one line.
LINE_COLUMNS = [
    "invoice_id", "position", "description", "quantity", "unit_amount", "amount",
    "period_start", "period_end", "tax_cents", "tax_rate_percent", "tax_name",
]  # fmt: skip

# The plan and end of a subscription's next period: a pending downgrade applies
# from that period on.
NEXT_PLAN = func.coalesce(S.c.pending_plan_id, S.c.plan_id)
NEXT_PERIOD_END = add_months_sql(S.c.anchor, (S.c.next_period + 1) * S.c.interval_months)

# The price of the next period: a pending plan change brings that plan's price; a price
# change announced to the subscriber applies to periods starting on or after its date;
# otherwise the price the subscription pays (None on rows made before prices were kept:
# the plan's). `P` is the next period's plan, joined in the run's select.
PRICE_CHANGE_DUE = and_(S.c.pending_price.isnot(None), S.c.next_period_start >= S.c.pending_price_from)
PRICE_CHANGE_PENDING = or_(S.c.pending_plan_id.isnot(None), PRICE_CHANGE_DUE)


def next_price(plan_price: ColumnElement[Any]) -> ColumnElement[Any]:
    """The next period's price, given the next plan's price."""
    return case(
        (S.c.pending_plan_id.isnot(None), plan_price),
        (PRICE_CHANGE_DUE, S.c.pending_price),
        else_=func.coalesce(S.c.price, plan_price),
    )


# In the UPDATE that advances a subscription (no plan joined): the pending plan's price is
# read only for the rare row that has one.
_PENDING_PLAN_PRICE = select(P.c.price).where(P.c.id == S.c.pending_plan_id).scalar_subquery()
ADVANCED_PRICE = case(
    (S.c.pending_plan_id.isnot(None), _PENDING_PLAN_PRICE),
    (PRICE_CHANGE_DUE, S.c.pending_price),
    else_=S.c.price,
)
# A plan's interval in months, as SQL (periods.INTERVAL_MONTHS).
_PENDING_PLAN_MONTHS = (
    select(case((P.c.interval == const("year"), 12), else_=1)).where(P.c.id == S.c.pending_plan_id).scalar_subquery()
)


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
    if not _lock_due(session, due):
        return result
    # Only this chunk invoices these subscriptions now, so holding the counter it never
    # waits on another chunk's rows (billing/numbering.py).
    chunk = _Chunk(
        now,
        settings,
        final=numbering.final_copy(session, settings),
        reserved=numbering.reserve(session, settings, now),
        credit=supports_dml_in_cte(session) and credits.any_balance(session),
    )

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
    _switch_intervals(session, renewing)
    while True:
        issued = _issue_next_periods(session, renewing, chunk)
        result.invoices += issued
        if not issued and not _advance_past_billed_periods(session, renewing):
            break
    if result.invoices:
        # The invoices that could not be numbered as they were written get their numbers
        # now. The invoice.issued events follow, so each carries its number.
        numbering.finish(session, chunk.reserved, settings)
        just_issued = and_(I.c.subscription_id.between(lo, hi), I.c.kind == const(KIND_PERIOD), I.c.issued_at == now)
        if not supports_dml_in_cte(session):  # (PostgreSQL applied them in the INSERT)
            # The customers' credit balances pay what they can of the new invoices (after tax).
            credits.apply_balances_sql(session, just_issued, now)
        events.emit_issued(session, lo, hi, now)
        events.emit_paid(session, and_(just_issued, I.c.status == const(INV_PAID)), now)  # by credit
    return result


@dataclass
class _Chunk:
    """What each INSERT of one chunk writes alike."""

    now: dt.datetime
    settings: BillingSettings
    final: dict[str, Any]  # the buyer's and the seller's copies (billing/numbering.py)
    reserved: Reserved | None  # the number counter, while the chunk holds it
    credit: bool  # new invoices take what they can of their customer's credit balance (PostgreSQL)

    @property
    def numbering(self) -> Reserved | None:
        """The counter, while the chunk's INSERTs write the numbers (see Reserved.written)."""
        return self.reserved if self.reserved is not None and self.reserved.open else None


def _lock_due(session: DbSession, due: ColumnElement[bool]) -> int:
    """Lock the chunk's due subscriptions, in id order (no deadlock between two runs over the same
    ids); returns how many are due. A second run waits here until this chunk commits, then finds
    them billed. (SQLite: the chunk holds the whole database from its first write anyway.)"""
    query = select(S.c.id).where(due).order_by(S.c.id)
    if supports_dml_in_cte(session):
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: other rows' foreign keys still check
    return len(session.execute(query).all())


def _switch_intervals(session: DbSession, renewing: ColumnElement[bool]) -> int:
    """A scheduled move to a plan billed at another interval (yearly to monthly) takes effect
    when the paid period ends: the subscription is anchored afresh on that day, so its
    next period is the new plan's first, of the new plan's length."""
    switching = and_(
        renewing,
        S.c.pending_plan_id.isnot(None),
        S.c.interval_months != _PENDING_PLAN_MONTHS,
    )
    return rows_changed(
        session,
        update(S)
        .where(switching)
        .values(anchor=S.c.next_period_start, next_period=0, interval_months=_PENDING_PLAN_MONTHS),
    )


def _priced(renewing: ColumnElement[bool], chunk: _Chunk) -> Select[Any]:
    """The next period's invoice of each `renewing` subscription, its line, its discount line
    (a coupon redeemed for that period: billing/coupons.py) and their tax; final from the start
    (its buyer and seller, and its number when the chunk holds the counter), and paid what the
    customer's credit balance pays of it (when the chunk applies balances).

    The invoice's net and tax are those of the discounted price; the plan's line keeps the
    tax of the full price and the discount line carries the difference (both per-line rounded).
    """
    now, settings, reserved = chunk.now, chunk.settings, chunk.numbering
    price = next_price(P.c.price)  # one unit of the plan per period, at the subscription's price
    rates = taxes.sql_active_rates()
    full = taxes.sql_line_tax(price, U, rates, settings.seller_country)
    tax = taxes.sql_line_tax(price - coupons.sql_discount(price), U, rates, settings.seller_country)
    total = tax.net + tax.tax
    numbered = [reserved.numbers(func.row_number().over(order_by=S.c.id)).label("number")] if reserved else []
    priced = (
        select(
            S.c.user_id,
            S.c.id.label("subscription_id"),
            P.c.id.label("plan_id"),
            literal(KIND_PERIOD).label("kind"),
            P.c.name.concat(" plan").label("description"),
            S.c.next_period_start.label("period_start"),
            NEXT_PERIOD_END.label("period_end"),
            total.label("total"),
            P.c.currency,
            literal(INV_OPEN).label("status"),
            literal(now, UTCDateTime).label("issued_at"),
            literal(now.date() + dt.timedelta(days=settings.due_days), I.c.due_date.type).label("due_date"),
            tax.net.label("subtotal_cents"),
            tax.tax.label("tax_cents"),
            tax.note.label("tax_note"),
            tax.percent.label("tax_rate_percent"),
            tax.name.label("tax_name"),
            full.net.label("line_amount"),
            full.tax.label("line_tax_cents"),
            (tax.net - full.net).label("discount_amount"),
            (tax.tax - full.tax).label("discount_tax_cents"),
            literal("Discount: ").concat(coupons.C.c.name).label("discount_description"),
            coupons.C.c.id.label("coupon_id"),
            *(value.label(name) for name, value in chunk.final.items()),
            *numbered,
        )
        .select_from(
            S.join(P, P.c.id == NEXT_PLAN)
            .join(U, U.c.id == S.c.user_id)
            .outerjoin(rates, taxes.sql_rate_join(U, rates, settings.seller_country))
            .outerjoin(coupons.R, coupons.sql_redemption_join(S))
            .outerjoin(coupons.C, coupons.C.c.id == coupons.R.c.coupon_id)
        )
        .where(renewing)
    )
    if not chunk.credit:
        return priced
    # A customer's new invoices take from the balance in subscription order (a running sum):
    # the balance looked up once per invoice inside, the credit worked out from it outside.
    spent_before = func.sum(total).over(partition_by=(S.c.user_id, P.c.currency), order_by=S.c.id) - total
    base = priced.add_columns(
        credits.sql_balance(S.c.user_id, P.c.currency).label("balance"), spent_before.label("spent_before")
    ).subquery("base")
    used = credits.sql_credit_used(base.c.balance, base.c.spent_before, base.c.total)
    paid = and_(used > 0, used >= base.c.total)
    return select(
        *(c for c in base.c if c.key not in ("status", "balance", "spent_before")),
        case((paid, literal(INV_PAID)), else_=base.c.status).label("status"),
        used.label("credit_applied_cents"),
        case((paid, literal(now, UTCDateTime))).label("paid_at"),
    )


def _lines_from(source: Any, invoice_id: ColumnElement[Any], priced: Any) -> Insert:
    """INSERT the plan's line of each invoice just issued (`source` joins its id to its priced row)."""
    return insert(L).from_select(
        LINE_COLUMNS,
        select(
            invoice_id,
            literal(1),
            priced.c.description,
            literal(1),
            priced.c.line_amount,
            priced.c.line_amount,
            priced.c.period_start,
            priced.c.period_end,
            priced.c.line_tax_cents,
            priced.c.tax_rate_percent,
            priced.c.tax_name,
        ).select_from(source),
    )


def _discount_lines_from(source: Any, invoice_id: ColumnElement[Any], priced: Any) -> Insert:
    """INSERT the discount line (negative, same rate) of each invoice just issued with a coupon."""
    return insert(L).from_select(
        [*LINE_COLUMNS, "coupon_id"],
        select(
            invoice_id,
            literal(2),
            priced.c.discount_description,
            literal(1),
            priced.c.discount_amount,
            priced.c.discount_amount,
            priced.c.period_start,
            priced.c.period_end,
            priced.c.discount_tax_cents,
            priced.c.tax_rate_percent,
            priced.c.tax_name,
            priced.c.coupon_id,
        )
        .select_from(source)
        .where(priced.c.coupon_id.is_not(None), priced.c.discount_amount != 0),
    )


def _issue_next_periods(session: DbSession, renewing: ColumnElement[bool], chunk: _Chunk) -> int:
    """Invoice the next period of each `renewing` subscription, with its line and tax, and
    advance it past that period.

    Returns how many were invoiced; a period invoiced already (a concurrent run
    won the insert) is not invoiced again.
    """
    priced = _priced(renewing, chunk)
    columns = [*ISSUED_COLUMNS, *chunk.final]
    columns += ["number"] if chunk.numbering else []
    columns += ["credit_applied_cents", "paid_at"] if chunk.credit else []
    if supports_dml_in_cte(session):
        # One statement: the subscriptions advanced, the lines and credit ledger entries
        # written are exactly the invoices this statement inserted, with no lookup of invoices
        # (whose statistics lag far behind during a big run and mislead the planner).
        rows = priced.cte("priced")
        issued = (
            insert_ignoring_duplicates(session, I)
            # The other columns take the database's defaults: a Python-side default rendered
            # into an INSERT inside a CTE is sent as NULL.
            .from_select(columns, select(*(rows.c[name] for name in columns)), include_defaults=False)
            .returning(I.c.id, I.c.subscription_id, I.c.plan_id, I.c.period_end)
            .cte("issued")
        )
        joined = issued.join(rows, rows.c.subscription_id == issued.c.subscription_id)
        writes = [
            _lines_from(joined, issued.c.id, rows).returning(L.c.id).cte("lined"),
            _discount_lines_from(joined, issued.c.id, rows).returning(L.c.id).cte("discounted"),
        ]
        if chunk.credit:
            used = select(
                rows.c.user_id,
                rows.c.currency,
                rows.c.credit_applied_cents.label("used"),
                issued.c.id.label("invoice_id"),
                rows.c.issued_at.label("created_at"),
            ).select_from(joined)
            writes.append(credits.sql_record_used(used.subquery("used")).returning(literal(1)).cte("credited"))
        advanced = (
            _advance(S.c.id == issued.c.subscription_id, issued.c.plan_id, issued.c.period_end)
            .returning(S.c.id)
            .cte("advanced")
        )
        inserted, offered = session.execute(
            select(
                select(func.count()).select_from(advanced).scalar_subquery(),
                select(func.count()).select_from(rows).scalar_subquery(),
            ).add_cte(*writes)
        ).one()
        count = int(inserted)
    else:
        offered = session.scalar(select(func.count()).select_from(priced.subquery())) if chunk.numbering else None
        count = _insert_invoices_and_lines(session, priced, columns)
        _advance_past_billed_periods(session, renewing)
    if chunk.numbering:
        chunk.numbering.written(session, int(offered or 0), count)
    return count


def _insert_invoices_and_lines(session: DbSession, priced: Select[Any], columns: list[str]) -> int:
    """The invoices and their lines in separate statements (SQLite: no INSERT inside a WITH)."""
    before = session.scalar(select(func.coalesce(func.max(I.c.id), 0)))
    # (The select itself, not a subquery of it: SQLite would read `ON CONFLICT` after a
    # subquery's alias as a join condition.)
    insert_invoices = insert_ignoring_duplicates(session, I).from_select(
        columns, priced.with_only_columns(*(priced.selected_columns[name] for name in columns))
    )
    count = max(rows_changed(session, insert_invoices), 0)
    if count:
        just_priced = priced.subquery("priced")
        new = I.join(just_priced, and_(just_priced.c.subscription_id == I.c.subscription_id, I.c.id > before))
        session.execute(_lines_from(new, I.c.id, just_priced))
        session.execute(_discount_lines_from(new, I.c.id, just_priced))
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
            price=ADVANCED_PRICE,
            pending_price=case((PRICE_CHANGE_PENDING, null()), else_=S.c.pending_price),
            pending_price_from=case((PRICE_CHANGE_PENDING, null()), else_=S.c.pending_price_from),
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
