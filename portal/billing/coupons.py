"""Coupons and promotion codes: which code a customer may redeem, and the discount it gives.

The rules, in one place (the billing run applies the same ones in SQL, below):

- A coupon takes a PERCENT (up to four decimals: 12.5 %) or a FIXED AMOUNT in one currency
  (minor units) off the plan's price of a period. A fixed amount applies only to plans in
  its currency; a coupon limited to some plans applies only to those.
- The discount never exceeds the price it discounts (a line's total is never negative).
- ROUNDING, the one rule: the discount is computed in integer minor units of the plan's
  currency (cents for EUR, yen for JPY) and ROUNDED HALF UP to a whole minor unit, with the
  percent in millionths p (12.5 % = 125 000):  discount = floor((2*A*p + 10**6) / (2*10**6)).
  So 15 % of 999 JPY is 149.85 -> 150 yen; 12.5 % of 1 004 JPY is 125.5 -> 126 yen.
- The discount is an invoice line of its own, before tax: a negative amount taxed at the
  same rate as the line it discounts, so that the invoice's tax is the tax (by the
  per-line rule of billing/taxes.py) of the discounted amount:
      line tax = tax(A),  discount line tax = tax(A - D) - tax(A).
- Duration in billing periods, counted from the period the redemption first applies to
  (the first invoice at subscribe, else the next period's invoice): once = 1 invoice,
  repeating N = N consecutive periods, forever. The window is kept on the redemption
  (first_period .. end_period), so the run needs no counter to decrement.
- A code is refused, with its reason, when it is unknown, paused (the code or its coupon),
  expired (the code or its coupon), used up (either's maximum redemptions reached), not for
  this plan, already used by this customer, or when the subscription already has a discount.
- Redemption is safe under concurrency: the counters are bumped by a conditional UPDATE
  (`times_redeemed < max_redemptions`), which PostgreSQL re-checks after waiting on the
  row's lock, and a CHECK constraint refuses anything past the maximum.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..models import (
    DUR_FOREVER,
    DUR_ONCE,
    DUR_REPEATING,
    Coupon,
    CouponRedemption,
    DbSession,
    Plan,
    PromotionCode,
    Subscription,
    User,
    coupon_plans,
)
from . import audit
from .errors import BillingError
from .money import format_money
from .taxes import MILLION, rate_millionths

MAX_CODE_LENGTH = 64

# The reasons a code is refused: (code for the API, message for the customer).
REASONS = {
    "unknown": "This code does not exist.",
    "paused": "This code is not available at the moment.",
    "expired": "This code has expired.",
    "used_up": "This code has been used up.",
    "not_for_plan": "This code is not valid for this plan.",
    "already_used": "You have already used this code.",
    "already_discounted": "Your subscription already has a discount.",
}


class CouponError(BillingError):
    """A promotion code refused; `reason` is one of REASONS (the API's code is `coupon_<reason>`)."""

    def __init__(self, reason: str):
        super().__init__(REASONS[reason], f"coupon_{reason}", 422)
        self.reason = reason


def normalize_code(code: str | None) -> str:
    """What a customer typed, as stored: trimmed, upper-case ('summer25 ' -> 'SUMMER25')."""
    return (code or "").strip().upper()


def discount_of(price: int, coupon: Coupon) -> int:
    """The discount, in minor units, `coupon` gives on a period's `price` (by the module's rule)."""
    if coupon.percent_off is not None:
        p = rate_millionths(coupon.percent_off)
        amount = (2 * price * p + MILLION) // (2 * MILLION)
    else:
        amount = coupon.amount_off or 0
    return max(min(amount, price), 0)


def describe(coupon: Coupon) -> str:
    """'25 % off for 3 periods', '5.00 EUR off once' (the console and the preview say this)."""
    if coupon.percent_off is not None:
        off = f"{Decimal(coupon.percent_off).normalize():f} % off"
    else:
        off = f"{format_money(coupon.amount_off or 0, coupon.currency or 'USD')} off"
    if coupon.duration == DUR_ONCE:
        return f"{off} the first invoice"
    if coupon.duration == DUR_REPEATING:
        return f"{off} for {coupon.duration_periods} billing periods"
    return f"{off} forever"


def _applies_to_plan(session: DbSession, coupon: Coupon, plan: Plan) -> bool:
    if coupon.amount_off is not None and coupon.currency != plan.currency:
        return False
    limited = session.scalars(select(coupon_plans.c.plan_id).where(coupon_plans.c.coupon_id == coupon.id)).all()
    return not limited or plan.id in limited


def _usable(row: Coupon | PromotionCode, now: dt.datetime) -> str | None:
    if not row.active:
        return "paused"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    if row.max_redemptions is not None and row.times_redeemed >= row.max_redemptions:
        return "used_up"
    return None


def check_code(
    session: DbSession, user_id: int | None, plan: Plan, code: str | None, now: dt.datetime
) -> PromotionCode:
    """The promotion code a customer may redeem on `plan` now, or a CouponError saying why not."""
    wanted = normalize_code(code)
    if not wanted or len(wanted) > MAX_CODE_LENGTH or "\x00" in wanted:
        raise CouponError("unknown")
    promo = session.scalar(select(PromotionCode).where(PromotionCode.code == wanted))
    if promo is None:
        raise CouponError("unknown")
    for row in (promo, promo.coupon):
        reason = _usable(row, now)
        if reason:
            raise CouponError(reason)
    if not _applies_to_plan(session, promo.coupon, plan):
        raise CouponError("not_for_plan")
    if user_id is not None and _used_by(session, promo.coupon_id, user_id):
        raise CouponError("already_used")
    return promo


def _used_by(session: DbSession, coupon_id: int, user_id: int) -> bool:
    found = select(CouponRedemption.id).where(
        CouponRedemption.coupon_id == coupon_id, CouponRedemption.user_id == user_id
    )
    return session.scalar(found.limit(1)) is not None


def active_redemption(session: DbSession, sub: Subscription) -> CouponRedemption | None:
    """The redemption that discounts this subscription's next period or a later one."""
    return session.scalar(
        select(CouponRedemption)
        .where(
            CouponRedemption.subscription_id == sub.id,
            or_(CouponRedemption.end_period.is_(None), CouponRedemption.end_period > sub.next_period),
        )
        .limit(1)
    )


def lock_for_redemption(session: DbSession, sub: Subscription) -> None:
    """Lock the subscription's row: two codes entered at once on one account queue here, and
    the second sees the first's redemption (`already_discounted`)."""
    session.refresh(sub, with_for_update=True)


def _take_one(session: DbSession, model: Any, row_id: int, now: dt.datetime) -> bool:
    """Count one redemption on the row unless it is paused, expired or used up (atomically)."""
    table = model.__table__
    result = session.execute(
        update(table)
        .where(
            table.c.id == row_id,
            table.c.active,
            or_(table.c.expires_at.is_(None), table.c.expires_at > now),
            or_(table.c.max_redemptions.is_(None), table.c.times_redeemed < table.c.max_redemptions),
        )
        .values(times_redeemed=table.c.times_redeemed + 1)
    )
    return bool(getattr(result, "rowcount", 0))


def redeem(
    session: DbSession, user: User, sub: Subscription, plan: Plan, code: str | None, now: dt.datetime
) -> CouponRedemption:
    """Apply a promotion code to `sub` from its next period (the first invoice of a new one).

    Safe under concurrency: of ten customers redeeming the last use at once, one wins;
    the others get `used_up`. The caller's transaction (or savepoint) is rolled back on refusal.
    """
    promo = check_code(session, user.id, plan, code, now)
    if active_redemption(session, sub) is not None:
        raise CouponError("already_discounted")
    for model, row_id in ((PromotionCode, promo.id), (Coupon, promo.coupon_id)):
        if not _take_one(session, model, row_id, now):
            session.expire(promo)
            session.expire(promo.coupon)
            check_code(session, user.id, plan, code, now)  # says why (used up, paused, expired)
            raise CouponError("used_up")
    coupon = promo.coupon
    first = sub.next_period
    end = {DUR_ONCE: first + 1, DUR_FOREVER: None}.get(coupon.duration, first + (coupon.duration_periods or 1))
    redemption = CouponRedemption(
        coupon_id=coupon.id,
        promotion_code_id=promo.id,
        user_id=user.id,
        subscription_id=sub.id,
        first_period=first,
        end_period=end,
        redeemed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(redemption)
    except IntegrityError:
        raise CouponError("already_used") from None
    session.expire(promo)
    session.expire(coupon)
    return redemption


@dataclass(frozen=True)
class DiscountPreview:
    """What a code would take off a plan's price per period, before tax."""

    code: str
    description: str
    price: int
    discount: int
    currency: str
    recurring: bool  # beyond the first invoice (repeating or forever)

    @property
    def discounted(self) -> int:
        return self.price - self.discount


def preview(session: DbSession, user_id: int | None, plan: Plan, code: str | None, now: dt.datetime) -> DiscountPreview:
    """The discount of `code` on `plan` for this customer, or a CouponError saying why not."""
    promo = check_code(session, user_id, plan, code, now)
    coupon = promo.coupon
    recurring = coupon.duration == DUR_FOREVER or (coupon.duration_periods or 1) > 1
    return DiscountPreview(
        promo.code, describe(coupon), plan.price, discount_of(plan.price, coupon), plan.currency, recurring
    )


def set_active(session: DbSession, row: Coupon | PromotionCode, active: bool, now: dt.datetime, actor_id: int) -> None:
    """Pause (False) or unpause (True) a coupon or a promotion code; audited."""
    row.active = active
    audit.record(session, actor_id, "unpause" if active else "pause", row, now=now)
    session.flush()


# --- The same rules in SQL, for the set-based billing run -------------------------------

R = CouponRedemption.__table__
C = Coupon.__table__


def sql_redemption_join(subscriptions: Any) -> ColumnElement[bool]:
    """ON clause: the redemption whose window holds the subscription's next period."""
    period = subscriptions.c.next_period
    return and_(
        R.c.subscription_id == subscriptions.c.id,
        R.c.first_period <= period,
        or_(R.c.end_period.is_(None), period < R.c.end_period),
    )


def sql_discount(price: ColumnElement[Any]) -> ColumnElement[Any]:
    """The module's discount rule over `price` and an outer-joined coupon (0 when none), capped at the price."""
    p = cast(func.round(C.c.percent_off * 10_000), BigInteger)
    percent = (2 * price * p + MILLION) // (2 * MILLION)
    raw = case((C.c.percent_off.is_not(None), percent), else_=func.coalesce(C.c.amount_off, 0))
    return case((C.c.id.is_(None), literal(0)), (raw > price, price), else_=raw)


def coupon_problem(coupon: Coupon) -> str | None:
    """What is wrong with a coupon staff are saving (None: nothing), in words for the form."""
    if (coupon.percent_off is None) == (coupon.amount_off is None):
        return "Give either a percent off or a fixed amount off, not both."
    if coupon.percent_off is not None:
        percent = Decimal(coupon.percent_off)
        if not Decimal(0) < percent <= Decimal(100) or percent.as_tuple().exponent < -4:  # type: ignore[operator]
            return "A percent off is more than 0 and at most 100, with up to four decimals (12.5)."
    if coupon.amount_off is not None:
        if coupon.amount_off <= 0:
            return "A fixed amount off is more than 0 (minor units, e.g. cents)."
        if not coupon.currency or len(coupon.currency) != 3 or not coupon.currency.isupper():
            return "A fixed amount off needs its currency, a three-letter code in capitals (USD)."
    elif coupon.currency:
        coupon.currency = None  # a percent applies in every currency
    if coupon.duration == DUR_REPEATING:
        if not coupon.duration_periods or coupon.duration_periods <= 0:
            return "A repeating coupon needs its number of billing periods (1 or more)."
    else:
        coupon.duration_periods = None
    if coupon.max_redemptions is not None and coupon.max_redemptions < max(coupon.times_redeemed or 0, 1):
        return "The maximum redemptions is at least 1 and at least the redemptions so far."
    return None


def code_problem(promo: PromotionCode) -> str | None:
    """What is wrong with a promotion code staff are saving; the code is stored upper-case."""
    promo.code = normalize_code(promo.code)
    if not promo.code or len(promo.code) > MAX_CODE_LENGTH or not all(c.isalnum() or c in "-_" for c in promo.code):
        return "A code is 1 to 64 letters, digits, '-' or '_' (customers may type it in any case)."
    if promo.max_redemptions is not None and promo.max_redemptions < max(promo.times_redeemed or 0, 1):
        return "The maximum redemptions is at least 1 and at least the redemptions so far."
    return None
