"""Read-side queries for a customer's own data; every one is scoped to the user."""
from __future__ import annotations

from flask import abort
from flask_sqlalchemy.pagination import SelectPagination
from sqlalchemy import func, select

from ..extensions import db
from ..models import INV_PAYABLE, INV_STATUSES, ApiToken, Invoice, Notification, Plan

PER_PAGE = 10
UNPAID = "unpaid"  # a filter of its own: open and overdue together
FILTERS = (UNPAID, *INV_STATUSES)


def plans_on_offer() -> list[Plan]:
    return db.session.scalars(select(Plan).where(Plan.active).order_by(Plan.sort_order, Plan.price)).all()


def own_invoice(user_id: int, invoice_id: int) -> Invoice:
    """The user's invoice, or 404: someone else's invoice does not exist for them."""
    invoice = db.session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.user_id == user_id))
    if invoice is None:
        abort(404)
    return invoice


class OneQueryPagination(SelectPagination):
    """Flask-SQLAlchemy's pagination with the page and the total in one statement
    (`count(*) OVER ()`), not two: one round trip less on every list page and API call.
    Only a page past the end (no rows to carry the total) counts separately."""

    _total: int | None = None

    def _query_items(self) -> list:
        stmt = (self._query_args["select"].add_columns(func.count().over())
                .limit(self.per_page).offset(self._query_offset))
        rows = self._query_args["session"].execute(stmt).all()
        self._total = rows[0][1] if rows else None
        return [row[0] for row in rows]

    def _query_count(self) -> int:
        return self._total if self._total is not None else super()._query_count()


def invoice_page(user_id: int, status: str | None, page: int, per_page: int = PER_PAGE):
    query = select(Invoice).where(Invoice.user_id == user_id).order_by(Invoice.id.desc())
    if status == UNPAID:
        query = query.where(Invoice.status.in_(INV_PAYABLE))
    elif status in INV_STATUSES:
        query = query.where(Invoice.status == status)
    return OneQueryPagination(select=query, session=db.session(), page=page, per_page=per_page,
                              error_out=False, count=True)


def invoices_to_pay(user_id: int, shown: int = 5) -> OneQueryPagination:
    """The user's most urgent invoices waiting for payment (`.items`), and how many there are (`.total`)."""
    query = (select(Invoice).where(Invoice.user_id == user_id, Invoice.status.in_(INV_PAYABLE))
             .order_by(Invoice.due_date, Invoice.id))
    return OneQueryPagination(select=query, session=db.session(), page=1, per_page=shown,
                              error_out=False, count=True)


def notifications_of(user_id: int, limit: int = 100) -> list[Notification]:
    return db.session.scalars(
        select(Notification).where(Notification.user_id == user_id, Notification.sent_at.is_not(None))
        .order_by(Notification.id.desc()).limit(limit)).all()


def tokens_of(user_id: int) -> list[ApiToken]:
    return db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())).all()
