"""Gapless, sequential invoice numbers: "INV-000042" (or "INV-2026-000042" per year).

A number is written in the SAME transaction that issues the invoice, from a counter
row per (prefix, year) that the transaction holds locked until it commits:

- A billing chunk first tries to take the counter at once (`reserve`: FOR UPDATE SKIP LOCKED).
  If it gets it, its INSERTs write each invoice with its number (the k-th new invoice
  of the chunk gets counter+k) and `finish` moves the counter on by as many: no row is
  written twice. A chunk locks its subscriptions before the counter, and only that
  chunk inserts their invoices, so while it holds the counter it never waits on
  another chunk's rows (no deadlock with a chunk waiting for the counter).
- A chunk that finds the counter taken (another worker is billing) inserts its invoices
  unnumbered and `finish` numbers them at its end (`assign_numbers`: lock, one
  set-based UPDATE in id order, counter moved on), waiting for the counter only for
  that short tail. So parallel billing stays parallel.
- Invoices issued one at a time (a proration, a first invoice) go the second way too.

So a number is used once the transaction commits and never again; a chunk that rolls
back takes its invoices AND its counter bump with it (no gap); and two transactions
never read the same counter value. Voided invoices keep their number. When an invoice
is numbered it also keeps a copy of its buyer's billing details and the seller's
(billing/seller.py): a legal document does not change when either later does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, func, literal, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from ..models import DbSession, Invoice, InvoiceNumberCounter, User
from .seller import snapshot_id
from .settings import BillingSettings
from .sql import in_batches, insert_ignoring_duplicates, rows_changed, supports_dml_in_cte

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


def final_copy(session: DbSession, settings: BillingSettings) -> dict[str, Any]:
    """What an invoice keeps once it is final, as column values over a join with its customer
    (`User`): the customer's billing details and the seller's (a legal document does not
    change when the customer later moves or the seller changes its VAT ID)."""
    return {"seller_id": literal(snapshot_id(session, settings.seller)), **_buyer_copy()}


def _buyer_copy() -> dict[str, Any]:
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
    copy = final_copy(session, settings)
    for year in years:
        last = _lock_counter(session, prefix, year)
        # Read after the lock: invoices another worker numbered before we got it are not waiting any more.
        scope = waiting if not year else (waiting & (issued_year == year))
        ranked = select(I.c.id, func.row_number().over(order_by=I.c.id).label("rn")).where(scope).subquery()
        count = rows_changed(
            session,
            update(I)
            .where(I.c.id == ranked.c.id, U.c.id == I.c.user_id)
            .values(number=_head(prefix, year) + padded(last + ranked.c.rn), **copy)
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
                session.expire(obj, ["number", "seller_id", "seller", *_buyer_copy()])


@dataclass
class Reserved:
    """A chunk's hold on the counter of (prefix, year): the k-th invoice its INSERTs write gets
    number last + k, and `finish` moves the counter past them."""

    prefix: str
    year: int
    last: int  # the counter's value when the chunk locked it
    used: int = 0  # numbers written so far
    open: bool = True  # False once an INSERT skipped a numbered row: the rest wait for assign_numbers

    def numbers(self, rank: ColumnElement[Any]) -> ColumnElement[Any]:
        """SQL: the number of the row ranked `rank` (1, 2, ...) in the next INSERT."""
        return literal(_head(self.prefix, self.year)) + padded(self.last + self.used + rank)

    def written(self, session: DbSession, offered: int, inserted: int) -> None:
        """Count an INSERT that numbered `offered` rows, of which `inserted` were written.

        A row not written (its period was invoiced already) would leave its number a gap:
        then that INSERT's invoices give their numbers back and wait for assign_numbers.
        """
        if inserted == offered:
            self.used += offered
            return
        taken = [format_number(self.prefix, self.year, self.last + self.used + k) for k in range(1, offered + 1)]
        batches = in_batches(I.c.number, taken)
        # ON CONFLICT DO NOTHING also skips a row whose NUMBER exists: then the counter is behind
        # the invoices (a restore), and those numbers belong to invoices issued before, which must
        # keep them (and their parties as issued). Stop, as assign_numbers' UPDATE would.
        holders = sum(session.scalar(select(func.count()).select_from(I).where(batch)) or 0 for batch in batches)
        if holders > inserted:
            raise RuntimeError(
                f"The invoice number counter {self.prefix!r}/{self.year} is behind the invoices issued: "
                f"{format_number(self.prefix, self.year, self.last + self.used + 1)} or a later number exists."
            )
        for batch in batches:
            session.execute(update(I).where(batch).values(number=None))
        self.open = False


def reserve(session: DbSession, settings: BillingSettings, now: dt.datetime) -> Reserved | None:
    """Hold the counter for invoices issued `now` if nobody else does; None if somebody does
    (or on the counter's very first use): the caller's invoices then wait for assign_numbers.

    Call it only holding the locks of the subscriptions it will invoice (see the module's doc).
    """
    prefix = settings.invoice_prefix
    year = now.astimezone(dt.UTC).year if settings.invoice_number_per_year else 0
    if not supports_dml_in_cte(session):
        # SQLite: one writer at a time; the chunk holds the database from its first write.
        return Reserved(prefix, year, _lock_counter(session, prefix, year))
    # SKIP LOCKED: a counter held by another transaction reads as no row, at once, without waiting.
    last = session.scalar(
        select(C.c.last_number).where(C.c.prefix == prefix, C.c.year == year).with_for_update(skip_locked=True)
    )
    return None if last is None else Reserved(prefix, year, int(last))


def finish(session: DbSession, reserved: Reserved | None, settings: BillingSettings) -> int:
    """End a chunk's numbering: the counter moves past the numbers its INSERTs wrote, and every
    invoice still waiting gets its number now. Returns how many that numbered."""
    if reserved is not None:
        if reserved.used:
            session.execute(
                update(C)
                .where(C.c.prefix == reserved.prefix, C.c.year == reserved.year)
                .values(last_number=reserved.last + reserved.used)
            )
        if reserved.open and session.scalar(select(I.c.id).where(I.c.number.is_(None)).limit(1)) is None:
            return 0  # nothing waits (read through ix_invoices_unnumbered)
    return assign_numbers(session, settings)
