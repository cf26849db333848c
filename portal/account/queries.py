"""Read-side queries for the account pages' other data; every one is scoped to the user.

A customer's invoices are read through portal/billing/invoice_queries.py, shared with
the pay pages and the API.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ..extensions import db
from ..models import ApiToken, Notification, Plan

_PLANS_ON_OFFER = select(Plan).where(Plan.active).order_by(Plan.sort_order, Plan.price)


def plans_on_offer() -> Sequence[Plan]:
    return db.session.scalars(_PLANS_ON_OFFER).all()


def notifications_of(user_id: int, limit: int = 100) -> Sequence[Notification]:
    return db.session.scalars(
        select(Notification)
        .where(Notification.user_id == user_id, Notification.sent_at.is_not(None))
        .order_by(Notification.id.desc())
        .limit(limit)
    ).all()


def tokens_of(user_id: int) -> Sequence[ApiToken]:
    return db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())).all()
