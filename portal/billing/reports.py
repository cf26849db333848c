"""Figures for staff: MRR, receivables, revenue by month, what falls due soon."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from ..models import (
    INV_OPEN,
    INV_OVERDUE,
    INV_PAYABLE,
    PAY_SUCCEEDED,
    SUB_ACTIVE,
    SUB_PAST_DUE,
    DbSession,
    Invoice,
    Payment,
    Plan,
    Subscription,
)
from .periods import add_months


def mrr_by_plan(session: DbSession) -> list[dict[str, Any]]:
    """Monthly recurring revenue and paying subscribers per plan (yearly prices / 12).

    Trials pay nothing yet; subscriptions set to cancel still count until they end.
    """
    rows = session.execute(
        select(
            Plan.code,
            Plan.name,
            Plan.currency,
            Subscription.interval_months,
            func.count(Subscription.id),
            func.sum(func.coalesce(Subscription.price, Plan.price)),  # what each pays, not today's list price
        )
        .join(Subscription, Subscription.plan_id == Plan.id)
        .where(Subscription.status.in_((SUB_ACTIVE, SUB_PAST_DUE)))
        .group_by(Plan.code, Plan.name, Plan.currency, Subscription.interval_months)
    ).all()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for code, name, currency, months, subscribers, total in rows:
        entry = out.setdefault(
            (code, currency), {"plan": code, "name": name, "currency": currency, "subscribers": 0, "mrr": 0}
        )
        entry["subscribers"] += subscribers
        entry["mrr"] += (total or 0) // months
    return sorted(out.values(), key=lambda e: -e["mrr"])


def receivables(session: DbSession) -> dict[str, dict[str, int]]:
    """Open and overdue totals per currency: {'USD': {'open': 2900, 'overdue': 0}}."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"open": 0, "overdue": 0})
    for status, currency, total in session.execute(
        select(Invoice.status, Invoice.currency, func.sum(Invoice.total))
        .where(Invoice.status.in_((INV_OPEN, INV_OVERDUE)))
        .group_by(Invoice.status, Invoice.currency)
    ):
        out[currency][status] = int(total)
    return dict(out)


def revenue_by_month(session: DbSession, today: dt.date, months: int = 12) -> list[dict[str, Any]]:
    """Money collected per calendar month, oldest first, the current month last."""
    first = add_months(today.replace(day=1), -(months - 1))
    starts = [add_months(first, i) for i in range(months)]
    start_at = dt.datetime.combine(first, dt.time(), dt.UTC)
    payments = session.execute(
        select(Payment.created_at, Payment.currency, Payment.amount).where(
            Payment.status == PAY_SUCCEEDED, Payment.flag.is_(None), Payment.created_at >= start_at
        )
    ).all()
    totals: dict[tuple[dt.date, str], int] = defaultdict(int)
    for created, currency, amount in payments:
        totals[(created.date().replace(day=1), currency)] += amount
    currencies = sorted({c for _, c in totals}) or ["USD"]
    return [{"month": m, "amounts": {c: totals[(m, c)] for c in currencies}} for m in starts]


def due_soon(session: DbSession, today: dt.date, days: int = 7, limit: int = 50) -> Sequence[Invoice]:
    return session.scalars(
        select(Invoice)
        .where(
            Invoice.status.in_(INV_PAYABLE),
            Invoice.due_date >= today,
            Invoice.due_date <= today + dt.timedelta(days=days),
        )
        .order_by(Invoice.due_date, Invoice.id)
        .limit(limit)
    ).all()


def flagged_payments(session: DbSession, limit: int = 20) -> Sequence[Payment]:
    return session.scalars(
        select(Payment).where(Payment.flag.is_not(None)).order_by(Payment.id.desc()).limit(limit)
    ).all()
