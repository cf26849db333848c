"""Every invoice as a flat row, for a spreadsheet or another program."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from ..models import DbSession, Invoice, Plan, User

EXPORT_FIELDS = (
    "number",
    "email",
    "plan",
    "period_start",
    "period_end",
    "total",
    "currency",
    "status",
    "due_date",
    "paid_at",
    "subtotal",
    "tax",
    "billing_country",
    "tax_id",
)

# A spreadsheet runs a cell that begins with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_rows(session: DbSession) -> Iterator[dict[str, Any]]:
    """One dict per invoice, keyed by EXPORT_FIELDS, dates as ISO text; streamed in batches."""
    query = (
        select(
            Invoice.number,
            User.email,
            Plan.code,
            Invoice.period_start,
            Invoice.period_end,
            Invoice.total,
            Invoice.currency,
            Invoice.status,
            Invoice.due_date,
            Invoice.paid_at,
            Invoice.subtotal_cents,
            Invoice.tax_cents,
            User.billing_country,
            User.tax_id,
        )
        .join(User, User.id == Invoice.user_id)
        .outerjoin(Plan, Plan.id == Invoice.plan_id)
        .order_by(Invoice.id)
        .execution_options(yield_per=5000)
    )
    for values in session.execute(query):
        yield {
            k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v)
            for k, v in zip(EXPORT_FIELDS, values, strict=True)
        }


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, quoted with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
