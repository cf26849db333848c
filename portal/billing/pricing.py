"""The price a subscription pays, and changing a plan's price without surprising anyone.

A subscription keeps the price it started (or last changed plan) at: editing a plan's
price never changes what existing subscribers pay on its own. Staff choose one of:

- NEW_ONLY: new subscribers pay the new price; existing ones keep theirs.
- EXISTING: existing subscribers move to the new price too, from their first period that
  starts on or after the notice's day plus the notice period; each is mailed a notice
  now (old price, new price, the date), through the notify outbox.

The billing run reads the price in SQL (billing/invoicing.py `next_price`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, select, update

from ..models import NOTE_PRICE_CHANGE, SUB_CANCELED, DbSession, Notification, Plan, Subscription, User
from . import audit
from .errors import BillingError
from .money import format_money
from .periods import period_start
from .settings import BillingSettings

NEW_ONLY, EXISTING = "new_only", "existing"
MODES = (NEW_ONLY, EXISTING)
MAX_PRICE = 2**63 - 1


@dataclass(frozen=True)
class PriceChange:
    """What a price change did: the prices, who keeps or moves, and from when."""

    old_price: int
    new_price: int
    mode: str
    subscribers: int  # live subscriptions on the plan
    notified: int  # notices queued (EXISTING)
    applies_from: dt.date | None  # EXISTING: periods starting on or after this day


def paid_price(sub: Subscription) -> int:
    """What the subscription pays per period now (its own price; older rows: the plan's)."""
    return sub.price if sub.price is not None else sub.plan.price


def next_period_price(sub: Subscription) -> int:
    """The price of the next invoice: a scheduled plan's, an announced price due by then, or today's."""
    if sub.pending_plan is not None:
        return sub.pending_plan.price
    if sub.pending_price is not None and sub.pending_price_from and sub.next_period_start >= sub.pending_price_from:
        return sub.pending_price
    return paid_price(sub)


def price_change_date(sub: Subscription) -> dt.date | None:
    """The first day this subscription pays its announced new price (None: no change pending).

    A scheduled move to another plan brings that plan's price instead, so it hides this one.
    """
    if sub.pending_price is None or sub.pending_price_from is None or sub.pending_plan_id is not None:
        return None
    k = sub.next_period
    while (start := period_start(sub.anchor, k, sub.interval_months)) < sub.pending_price_from:
        k += 1
    return start


def change_price(
    session: DbSession,
    plan: Plan,
    new_price: int,
    mode: str,
    now: dt.datetime,
    settings: BillingSettings,
    *,
    actor_id: int | None = None,
) -> PriceChange:
    """Set `plan`'s price; existing subscribers keep theirs (NEW_ONLY) or move to it after
    a notice (EXISTING). Audited; flushes, never commits."""
    if mode not in MODES:
        raise BillingError("Choose who pays the new price: new subscribers only, or existing ones too.", "invalid", 422)
    if isinstance(new_price, bool) or not isinstance(new_price, int) or not 0 <= new_price <= MAX_PRICE:
        raise BillingError("A price is a whole number of minor units, zero or more.", "invalid", 422)
    old_price = plan.price
    if new_price == old_price:
        raise BillingError(
            f"The {plan.name} plan already costs {format_money(old_price, plan.currency)}.", "same_price"
        )
    S = Subscription
    # One price change at a time. FOR NO KEY UPDATE, not FOR UPDATE: a billing chunk holding the
    # plan's subscriptions (which the UPDATEs below wait for) checks its invoices' plan_id with
    # FOR KEY SHARE, which FOR UPDATE would block: a deadlock.
    session.execute(select(Plan.id).where(Plan.id == plan.id).with_for_update(key_share=True))
    on_plan = and_(S.plan_id == plan.id, S.status != SUB_CANCELED)
    subscribers = session.scalar(select(func.count()).select_from(S).where(on_plan)) or 0
    # Rows that followed the plan's price keep the price they pay today, whatever the choice.
    session.execute(update(S).where(on_plan, S.price.is_(None)).values(price=old_price))
    notified, applies_from = 0, None
    if mode == EXISTING:
        applies_from = now.date() + dt.timedelta(days=settings.price_change_notice_days)
        session.execute(
            update(S)
            .where(on_plan, S.price != new_price)
            .values(pending_price=new_price, pending_price_from=applies_from)
        )
        # Those already paying the new price have nothing pending (an earlier announcement is withdrawn).
        session.execute(
            update(S).where(on_plan, S.price == new_price).values(pending_price=None, pending_price_from=None)
        )
        notified = _queue_notices(session, plan, old_price, new_price, now)
    else:
        # An announced change of this plan's price stands: it was mailed, and its date is kept.
        pass
    plan.price = new_price
    detail = f"{format_money(old_price, plan.currency)} -> {format_money(new_price, plan.currency)}; " + (
        f"existing subscribers from periods starting on or after {applies_from} ({notified} notified)"
        if mode == EXISTING
        else f"new subscribers only ({subscribers} keep their price)"
    )
    audit.record(session, actor_id, "change_price", plan, detail, now)
    session.flush()
    return PriceChange(old_price, new_price, mode, subscribers, notified, applies_from)


def _queue_notices(session: DbSession, plan: Plan, old_price: int, new_price: int, now: dt.datetime) -> int:
    """One ready-written notice per subscriber whose price changes: old price, new price, the date."""
    S = Subscription
    rows = session.execute(
        select(S.id, S.user_id, S.anchor, S.next_period, S.interval_months, S.price, S.pending_price_from, User.name)
        .join(User, User.id == S.user_id)
        .where(
            S.plan_id == plan.id,
            S.status != SUB_CANCELED,
            S.pending_price == new_price,
            S.pending_plan_id.is_(None),
        )
        .order_by(S.id)
    ).all()
    for _sid, user_id, anchor, next_period, months, price, applies_from, name in rows:
        k = next_period
        while (day := period_start(anchor, k, months)) < applies_from:
            k += 1
        old, new = format_money(price, plan.currency), format_money(new_price, plan.currency)
        every = "month" if months == 1 else "year"
        session.add(
            Notification(
                user_id=user_id,
                kind=NOTE_PRICE_CHANGE,
                step=0,
                subject=f"Your {plan.name} price changes to {new} on {day:%B %-d, %Y}"[:255],
                body=(
                    f"Hello{' ' + name if name else ''},\n\n"
                    f"The price of the {plan.name} plan changes. You pay {old} a {every} today; "
                    f"from your billing period starting on {day:%B %-d, %Y} you pay {new} a {every}.\n\n"
                    "Nothing changes before that day. You can change plan or cancel on your account page "
                    "at any time before then.\n"
                ),
                created_at=now,
            )
        )
    return len(rows)
