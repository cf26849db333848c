"""The plans on offer: the three a new installation starts with (Basic, Pro, Enterprise),
each billed monthly or yearly (a variant of its own, `<code>-yearly`, with its own price),
and archiving one (no new subscribers; existing subscriptions keep it)."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import select

from ..models import DbSession, Plan
from . import audit

DEFAULT_PLANS = (
    dict(
        code="basic",
        name="Basic",
        price=900,
        sort_order=1,
        description="For a side project: one seat, email support.",
        features={"seats": 1, "priority_support": False},
    ),
    dict(
        code="pro",
        name="Pro",
        price=2900,
        sort_order=2,
        description="For a growing team: ten seats, priority support.",
        features={"seats": 10, "priority_support": True},
    ),
    dict(
        code="enterprise",
        name="Enterprise",
        price=9900,
        sort_order=3,
        description="For the whole company: unlimited seats, an account manager.",
        features={"seats": 1000, "priority_support": True, "account_manager": True},
    ),
)


# Each plan billed yearly too, for ten months' price (two months free).
YEARLY_MONTHS_CHARGED = 10
YEARLY_PLANS = tuple(
    dict(
        spec,
        code=f"{spec['code']}-yearly",
        price=cast(int, spec["price"]) * YEARLY_MONTHS_CHARGED,
        interval="year",
    )
    for spec in DEFAULT_PLANS
)


def seed_plans(session: DbSession) -> int:
    """Create the predefined plans that do not exist yet; edits by staff are kept."""
    existing = set(session.scalars(select(Plan.code)))
    created = 0
    for spec in (*DEFAULT_PLANS, *YEARLY_PLANS):
        if spec["code"] not in existing:
            session.add(Plan(currency="USD", **{"interval": "month", "trial_days": 0, "active": True, **spec}))
            created += 1
    session.flush()
    return created


def archive(session: DbSession, plan: Plan, now: dt.datetime, actor_id: int | None = None) -> bool:
    """Take a plan off offer, audited; False if it was archived already."""
    if not plan.active:
        return False
    plan.active = False
    audit.record(session, actor_id, "archive", plan, now=now)
    session.flush()
    return True


def yearly_saving(monthly: Plan, yearly: Plan) -> int:
    """What paying yearly saves over twelve monthly payments (0 if nothing)."""
    return max(monthly.price * 12 - yearly.price, 0)


def variants(plans: list[Plan]) -> list[tuple[Plan | None, Plan | None]]:
    """The plans on offer paired as (monthly, yearly) variants of one plan (same name and currency)."""
    pairs: dict[tuple[str, str], list[Plan | None]] = {}
    for plan in plans:
        slot = pairs.setdefault((plan.name, plan.currency), [None, None])
        index = 1 if plan.interval == "year" else 0
        if slot[index] is None:
            slot[index] = plan
    return [(m, y) for m, y in pairs.values()]
