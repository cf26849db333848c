"""Gapless, sequential invoice numbers: "INV-000042" (or "INV-2026-000042" per year).

An invoice is issued without a number; `assign_numbers` then numbers every invoice
still waiting, in id order, in the SAME transaction that issued them:

1. the counter row of (prefix, year) is locked (SELECT ... FOR UPDATE; SQLite
   serialises writers anyway): concurrent workers queue here, each for the short
   tail of its transaction;
2. one set-based UPDATE gives the waiting invoices counter+1, counter+2, ...
   ordered by id, and copies each customer's billing details onto the invoice (the
   buyer the document shows from then on);
3. the counter moves on by as many, in the same transaction.

So a number is used once the transaction commits and never again; a chunk that
rolls back takes its invoices AND its counter bump with it (no gap); and two workers
never read the same counter value. Voided invoices keep their number.

Cost: the UPDATE rewrites every invoice a chunk inserted (PostgreSQL re-checks its
foreign keys too, the row being the transaction's own). Writing the numbers in the
INSERT instead, when the counter could be locked at once (NOWAIT, in a savepoint with a
lock timeout so as never to wait on another run while holding the counter), was tried:
no measurable gain in the billing benchmark, and more ways to go wrong, so not kept.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, func, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from ..models import DbSession, Invoice, InvoiceNumberCounter, User
from .settings import BillingSettings
from .sql import insert_ignoring_duplicates, rows_changed

I = Invoice.__table__  # noqa: E741
C = InvoiceNumberCounter.__table__
U = User.__table__
DIGITS = 6  # zero-padded to six digits; longer numbers simply grow


class padded(GenericFunction[Any]):
    """padded(n) -> '000042': n zero-padded to DIGITS digits, never truncated."""

    type = String()
    inherit_cache = True
    name = "billing_padded"


@compiles(padded, "postgresql")
def _pg(element: padded, compiler: SQLCompiler, **kw: Any) -> str:
    (n,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CASE WHEN {n} < {10**DIGITS} THEN lpad(CAST({n} AS TEXT), {DIGITS}, '0') ELSE CAST({n} AS TEXT) END"


@compiles(padded, "sqlite")
def _sqlite(element: padded, compiler: SQLCompiler, **kw: Any) -> str:
    (n,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"printf('%0{DIGITS}d', {n})"


class utc_year(GenericFunction[Any]):
    """utc_year(timestamp) -> the year in UTC, whatever the connection's time zone."""

    type = Integer()
    inherit_cache = True
    name = "billing_utc_year"


@compiles(utc_year, "postgresql")
def _pg_year(element: utc_year, compiler: SQLCompiler, **kw: Any) -> str:
    (ts,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(YEAR FROM {ts} AT TIME ZONE 'UTC') AS INTEGER)"


@compiles(utc_year, "sqlite")
def _sqlite_year(element: utc_year, compiler: SQLCompiler, **kw: Any) -> str:
    (ts,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(strftime('%Y', {ts}) AS INTEGER)"


def format_number(prefix: str, year: int, n: int) -> str:
    """The number as people see it; the SQL below writes the same text."""
    return f"{_head(prefix, year)}{n:0{DIGITS}d}"


def _head(prefix: str, year: int) -> str:
    return f"{prefix}-{year}-" if year else f"{prefix}-"


def _lock_counter(session: DbSession, prefix: str, year: int) -> int:
    """The counter's last number, its row locked until the transaction ends."""
    session.execute(
        insert_ignoring_duplicates(session, C).values(prefix=prefix, year=year, last_number=0)
    )  # first use of this prefix/year; a concurrent first use waits here for ours
    return int(
        session.execute(
            select(C.c.last_number).where(C.c.prefix == prefix, C.c.year == year).with_for_update()
        ).scalar_one()
    )


def _buyer_copy() -> dict[str, Any]:
    """The customer's billing details as the invoice keeps them once it is final: a legal
    document does not change when the customer later moves or changes their VAT ID."""
    return {
        "buyer_email": U.c.email,
        "buyer_name": func.coalesce(func.nullif(U.c.billing_name, ""), U.c.name, ""),
        "buyer_company": U.c.billing_company,
        "buyer_address": U.c.billing_address,
        "buyer_country": U.c.billing_country,
        "buyer_tax_id": U.c.tax_id,
    }


def allocate(session: DbSession, prefix: str, year: int) -> str:
    """The next number of the (prefix, year) sequence, for one document numbered on its own
    (a credit note). The counter stays locked until the caller's transaction ends; a rollback
    gives the number back."""
    last = _lock_counter(session, prefix, year) + 1
    session.execute(update(C).where(C.c.prefix == prefix, C.c.year == year).values(last_number=last))
    return format_number(prefix, year, last)


def assign_numbers(session: DbSession, settings: BillingSettings) -> int:
    """Number every invoice that has none yet, in id order; returns how many were numbered.

    The caller commits (or rolls back) the numbers with the invoices.
    """
    prefix = settings.invoice_prefix
    waiting = I.c.number.is_(None)
    issued_year = utc_year(I.c.issued_at)
    if settings.invoice_number_per_year:
        years = sorted(session.scalars(select(issued_year).where(waiting).distinct()).all())
        if not years:
            return 0
    else:
        years = [0]
    numbered = 0
    for year in years:
        last = _lock_counter(session, prefix, year)
        # Read after the lock: invoices another worker numbered before we got it are not waiting any more.
        scope = waiting if not year else (waiting & (issued_year == year))
        ranked = select(I.c.id, func.row_number().over(order_by=I.c.id).label("rn")).where(scope).subquery()
        count = rows_changed(
            session,
            update(I)
            .where(I.c.id == ranked.c.id, U.c.id == I.c.user_id)
            .values(number=_head(prefix, year) + padded(last + ranked.c.rn), **_buyer_copy())
            .execution_options(synchronize_session=False),
        )
        if count > 0:
            session.execute(update(C).where(C.c.prefix == prefix, C.c.year == year).values(last_number=last + count))
            numbered += count
    return numbered


def number_issued(session: DbSession, settings: BillingSettings) -> None:
    """Number the invoices just issued one by one (a proration); the session's copies then reload it."""
    session.flush()
    if assign_numbers(session, settings):
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Invoice) and obj.number is None:
                session.expire(obj, ["number", *_buyer_copy()])
