"""Read-side queries for a customer's own invoices; every one is scoped to the user.

Plain SQLAlchemy on the session passed in, shared by the portal's pages, the pay
pages and the JSON API. A query finds nothing by returning None; the view decides
that this is a 404.

The statements that page views and API reads run on every request are built once,
when this module is imported, with the user and a list's bounds as bound
parameters: building a select and its cache key anew costs the web process more
than PostgreSQL takes to answer it. Lists read the columns they show into plain
rows (`InvoiceRow`), not ORM objects: nothing on a list page changes an invoice.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, literal_column, select, union_all
from sqlalchemy.orm import joinedload

from ..models import INV_PAYABLE, INV_STATUSES, DbSession, Invoice

PER_PAGE = 10
UNPAID = "unpaid"  # a filter of its own: open and overdue together
FILTERS = (UNPAID, *INV_STATUSES)

# (With the seller it was issued by: every page of an invoice shows it.)
_OWN_INVOICE = (
    select(Invoice)
    .options(joinedload(Invoice.seller))
    .where(Invoice.id == bindparam("invoice_id"), Invoice.user_id == bindparam("user_id"))
)


def own_invoice(session: DbSession, user_id: int, invoice_id: int) -> Invoice | None:
    """The user's invoice, or None: someone else's invoice does not exist for them."""
    return session.scalar(_OWN_INVOICE, {"invoice_id": invoice_id, "user_id": user_id})


class InvoiceRow(NamedTuple):
    """An invoice as lists and the API's list show it (the same names as on Invoice)."""

    id: int
    kind: str
    description: str
    status: str
    period_start: dt.date
    period_end: dt.date
    total: int
    currency: str
    issued_at: dt.datetime
    due_date: dt.date
    paid_at: dt.datetime | None
    number: str | None
    subtotal_cents: int
    tax_cents: int
    credited_cents: int
    credit_applied_cents: int

    @property
    def amount_due(self) -> int:
        """What a payable invoice still asks for: the total less credit notes and credit applied."""
        return max(self.total - self.credited_cents - self.credit_applied_cents, 0)


@dataclass(frozen=True)
class Page:
    """One page of a list and the number of items in the whole list."""

    items: list[InvoiceRow]
    total: int
    page: int = 1
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None


_invoices = Invoice.__table__  # table columns: rows come back as tuples, no ORM objects
_ROW_COLUMNS = [_invoices.c[name] for name in InvoiceRow._fields]


def _invoice_list(*where: Any, order_by: Any, first: Any = ()) -> Select[Any]:
    """The user's invoices as (*first, listed, *InvoiceRow) rows, `listed` being how many
    the whole list has (`count(*) OVER ()`: a page and the count in one statement);
    `user_id`, `limit`, `offset` and any bindparam in `where` are bound when it runs."""
    return (
        select(*first, func.count().over().label("listed"), *_ROW_COLUMNS)
        .where(_invoices.c.user_id == bindparam("user_id"), *where)
        .order_by(*order_by)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_PAYABLE = _invoices.c.status.in_(INV_PAYABLE)
_NEWEST_FIRST = (_invoices.c.id.desc(),)
_MOST_URGENT_FIRST = (_invoices.c.due_date, _invoices.c.id)
_INVOICE_LISTS = {  # by filter: None (all), UNPAID, or any one status (bound as `status`)
    None: _invoice_list(order_by=_NEWEST_FIRST),
    UNPAID: _invoice_list(_PAYABLE, order_by=_NEWEST_FIRST),
    "status": _invoice_list(_invoices.c.status == bindparam("status"), order_by=_NEWEST_FIRST),
}


def _account_list(name: str, *where: Any, order_by: Any) -> Select[Any]:
    """One of the account page's lists, its rows tagged with the list's name and their place in it."""
    tags: tuple[Any, ...] = (
        literal_column(f"'{name}'").label("which"),
        func.row_number().over(order_by=order_by).label("place"),
    )
    return select(_invoice_list(*where, order_by=order_by, first=tags).subquery(name))


# The account page's two lists in one statement: the invoices waiting for payment, most
# urgent first, and the most recent invoices.
_ACCOUNT_LISTS = union_all(
    _account_list("to_pay", _PAYABLE, order_by=_MOST_URGENT_FIRST),
    _account_list("recent", order_by=_NEWEST_FIRST),
).order_by("which", "place")


def _rows(
    session: DbSession, statement: Select[Any], params: dict[str, Any], limit: int, offset: int = 0
) -> tuple[list[InvoiceRow], int | None]:
    """(the rows, the list's total); the total is None when the page is empty."""
    rows = session.execute(statement, {**params, "limit": limit, "offset": offset}).all()
    return [InvoiceRow._make(row[1:]) for row in rows], (rows[0][0] if rows else None)


def invoice_page(session: DbSession, user_id: int, status: str | None, page: int, per_page: int = PER_PAGE) -> Page:
    """A page of the user's invoices, newest first: all, UNPAID, or of one status."""
    params: dict[str, Any] = {"user_id": user_id}
    if status in INV_STATUSES:
        statement, params["status"] = _INVOICE_LISTS["status"], status
    else:
        statement = _INVOICE_LISTS[UNPAID if status == UNPAID else None]
    items, total = _rows(session, statement, params, per_page, (page - 1) * per_page)
    if total is None:  # a page past the end has no row to carry the total: ask for the first
        total = _rows(session, statement, params, 1)[1] or 0
    return Page(items, total, page, per_page)


def account_invoices(session: DbSession, user_id: int, shown: int = 5) -> tuple[Page, list[InvoiceRow]]:
    """The account page's lists: the user's most urgent invoices waiting for payment (`.items`)
    and how many wait (`.total`); the `shown` most recent invoices."""
    lists: dict[str, list[InvoiceRow]] = {"to_pay": [], "recent": []}
    waiting = 0
    for which, _place, listed, *columns in session.execute(
        _ACCOUNT_LISTS, {"user_id": user_id, "limit": shown, "offset": 0}
    ):
        lists[which].append(InvoiceRow(*columns))
        if which == "to_pay":
            waiting = listed
    return Page(lists["to_pay"], waiting, 1, shown), lists["recent"]
