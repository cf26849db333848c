"""The plans on offer: the three a new installation starts with (Basic, Pro, Enterprise),
and archiving one (no new subscribers; existing subscriptions keep it)."""

from __future__ import annotations

import datetime as dt

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


def seed_plans(session: DbSession) -> int:
    """Create the predefined plans that do not exist yet; edits by staff are kept."""
    existing = set(session.scalars(select(Plan.code)))
    created = 0
    for spec in DEFAULT_PLANS:
        if spec["code"] not in existing:
            session.add(Plan(currency="USD", interval="month", trial_days=0, active=True, **spec))
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
