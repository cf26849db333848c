"""Coupons and promotion codes: the discount rule, its tax, its duration, the refusals, the race.

THE RULES (portal/billing/coupons.py): the discount is computed in integer minor units of
the plan's currency and ROUNDED HALF UP (15 % of 999 JPY = 149.85 -> 150 yen), never more
than the price; it is its own invoice line (negative), taxed at the line's rate so that
the invoice's tax is the per-line-rounded tax of the discounted price:
    plan line tax = tax(A), discount line tax = tax(A - D) - tax(A).

Worked table (minor units: cents, or yen for JPY), each row one subscribe with a code:

| situation | price | coupon | rate | plan line | discount line | subtotal | tax | total |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| percent, no tax | 2900 USD | 25 % | none | 2900 / 0 | -725 / 0 | 2175 | 0 | 2175 |
| percent with decimals, VAT | 2900 EUR | 12.5 % | 19 % excl. | 2900 / 551 | -363 / -69 | 2537 | 482 | 3019 |
| inclusive VAT | 2900 EUR | 15 % | 25.5 % incl. | 2311 / 589 | -347 / -88 | 1964 | 501 | 2465 |
| JPY, half up (149.85) | 999 JPY | 15 % | 10 % excl. | 999 / 100 | -150 / -15 | 849 | 85 | 934 |
| JPY, exactly half (125.5) | 1004 JPY | 12.5 % | none | 1004 / 0 | -126 / 0 | 878 | 0 | 878 |
| JPY, below half (1.05) | 7 JPY | 15 % | none | 7 / 0 | -1 / 0 | 6 | 0 | 6 |
| fixed amount, VAT | 2900 EUR | 5.00 EUR | 19 % excl. | 2900 / 551 | -500 / -95 | 2400 | 456 | 2856 |
| fixed above the price | 900 USD | 10.00 USD | none | 900 / 0 | -900 / 0 | 0 | 0 | 0 |
| 100 %, VAT | 2900 EUR | 100 % | 19 % excl. | 2900 / 551 | -2900 / -551 | 0 | 0 | 0 |
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.billing import coupons, taxes
from portal.billing.invoicing import run_billing
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import (
    DUR_FOREVER,
    DUR_ONCE,
    DUR_REPEATING,
    Coupon,
    CouponRedemption,
    Invoice,
    Plan,
    PromotionCode,
    Subscription,
    TaxRate,
    User,
)
from tests.conftest import utc

NOW = utc(2024, 1, 31, 8)


def make_code(session, code="SAVE", *, percent=None, amount=None, currency=None, plans=(), **kw):
    coupon_kw = {k: kw.pop(k) for k in list(kw) if k.startswith("coupon_")}
    coupon = Coupon(
        name=f"{code} coupon",
        percent_off=Decimal(percent) if percent is not None else None,
        amount_off=amount,
        currency=currency,
        duration=kw.pop("duration", DUR_ONCE),
        duration_periods=kw.pop("duration_periods", None),
        **{k.removeprefix("coupon_"): v for k, v in coupon_kw.items()},
    )
    coupon.plans = list(plans)
    promo = PromotionCode(coupon=coupon, code=code, **kw)
    session.add_all([coupon, promo])
    session.commit()
    return promo


def lines_of(invoice):
    return [(line.amount, line.tax_cents) for line in invoice.lines]


def totals_of(invoice):
    return (invoice.subtotal_cents, invoice.tax_cents, invoice.total)


# (price, currency, percent, amount, country, rate, inclusive) -> (lines, totals)
WORKED = [
    ("percent, no tax", 2900, "USD", "25", None, None, None, False, [(2900, 0), (-725, 0)], (2175, 0, 2175)),
    ("decimals, VAT", 2900, "EUR", "12.5", None, "DE", "19", False, [(2900, 551), (-363, -69)], (2537, 482, 3019)),
    ("inclusive VAT", 2900, "EUR", "15", None, "FI", "25.5", True, [(2311, 589), (-347, -88)], (1964, 501, 2465)),
    ("JPY half up", 999, "JPY", "15", None, "JP", "10", False, [(999, 100), (-150, -15)], (849, 85, 934)),
    ("JPY exactly half", 1004, "JPY", "12.5", None, None, None, False, [(1004, 0), (-126, 0)], (878, 0, 878)),
    ("JPY below half", 7, "JPY", "15", None, None, None, False, [(7, 0), (-1, 0)], (6, 0, 6)),
    ("fixed, VAT", 2900, "EUR", None, 500, "DE", "19", False, [(2900, 551), (-500, -95)], (2400, 456, 2856)),
    ("fixed above price", 900, "USD", None, 1000, None, None, False, [(900, 0), (-900, 0)], (0, 0, 0)),
    ("100 %, VAT", 2900, "EUR", "100", None, "DE", "19", False, [(2900, 551), (-2900, -551)], (0, 0, 0)),
]  # fmt: skip


@pytest.mark.parametrize("situation, price, currency, percent, amount, country, rate, inclusive, lines, totals", WORKED)
def test_the_first_invoice_carries_the_discount_line(
    session, make_user, situation, price, currency, percent, amount, country, rate, inclusive, lines, totals
):
    settings = BillingSettings(seller_country="FI")
    if rate is not None:
        session.add(TaxRate(name="VAT", percent=Decimal(rate), country=country, inclusive=inclusive))
    plan = Plan(code="t", name="Test", price=price, currency=currency, interval="month")
    session.add(plan)
    make_code(session, "DEAL", percent=percent, amount=amount, currency=currency if amount else None)
    user = make_user(billing_country=country)
    subscribe(session, user, plan, NOW, settings, promotion_code="deal")  # case-insensitive
    session.commit()
    [invoice] = session.scalars(select(Invoice).where(Invoice.user_id == user.id)).all()
    assert lines_of(invoice) == lines
    assert totals_of(invoice) == totals
    discount = invoice.lines[1]
    assert discount.description == "Discount: DEAL coupon" and discount.coupon_id is not None
    assert discount.tax_name == invoice.lines[0].tax_name
    assert Decimal(discount.tax_rate_percent) == Decimal(invoice.lines[0].tax_rate_percent)
    # The SQL of the run agrees with the Python rule.
    promo_coupon = session.scalar(select(Coupon))
    assert -discount.unit_amount == coupons.discount_of(price, promo_coupon) or inclusive
    if rate is not None:
        net, tax = taxes.line_tax(price - coupons.discount_of(price, promo_coupon), Decimal(rate), inclusive)
        assert (invoice.subtotal_cents, invoice.tax_cents) == (net, tax)


# duration, periods -> which of the first four period invoices are discounted
DURATIONS = [
    (DUR_ONCE, None, [True, False, False, False]),
    (DUR_REPEATING, 2, [True, True, False, False]),
    (DUR_REPEATING, 3, [True, True, True, False]),
    (DUR_FOREVER, None, [True, True, True, True]),
]


@pytest.mark.parametrize("duration, periods, discounted", DURATIONS)
def test_the_billing_run_counts_the_duration_in_periods(session, make_user, settings, duration, periods, discounted):
    make_code(session, "TEN", percent="10", duration=duration, duration_periods=periods)
    user = make_user()
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 15, 8), settings, promotion_code="TEN")
    session.commit()
    run_billing(session, utc(2024, 4, 16), settings, session.commit)  # Feb, Mar, Apr invoices
    session.commit()
    invoices = session.scalars(select(Invoice).where(Invoice.user_id == user.id).order_by(Invoice.period_start)).all()
    assert [inv.period_start.month for inv in invoices] == [1, 2, 3, 4]
    assert [len(inv.lines) == 2 for inv in invoices] == discounted
    assert [inv.total for inv in invoices] == [2610 if d else 2900 for d in discounted]


def test_a_code_redeemed_on_the_account_discounts_the_next_invoice(session, make_user, settings):
    make_code(session, "LATER", amount=1000, currency="USD")
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 15, 8), settings)
    session.commit()
    coupons.redeem(session, user, sub, sub.plan, "later", utc(2024, 1, 20))
    session.commit()
    run_billing(session, utc(2024, 3, 16), settings, session.commit)
    invoices = session.scalars(select(Invoice).where(Invoice.user_id == user.id).order_by(Invoice.period_start)).all()
    assert [inv.total for inv in invoices] == [2900, 1900, 2900]


def test_a_trial_discounts_the_first_invoice_after_it(session, make_user, settings):
    plan = Plan(code="tr", name="Trial", price=1000, currency="USD", interval="month", trial_days=14)
    session.add(plan)
    make_code(session, "HALF", percent="50")
    user = make_user()
    subscribe(session, user, plan, utc(2024, 1, 1, 8), settings, promotion_code="HALF")
    session.commit()
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    invoices = session.scalars(select(Invoice).where(Invoice.user_id == user.id).order_by(Invoice.period_start)).all()
    assert [inv.total for inv in invoices] == [500, 1000]


def _refusal(session, make_user, situation):
    pro, basic = find_plan(session, "pro"), find_plan(session, "basic")
    past = utc(2024, 1, 1)
    setups = {
        "unknown": dict(code="OTHER"),
        "code paused": dict(active=False),
        "coupon paused": dict(coupon_active=False),
        "code expired": dict(expires_at=past),
        "coupon expired": dict(coupon_expires_at=past),
        "code used up": dict(max_redemptions=1, times_redeemed=1),
        "coupon used up": dict(coupon_max_redemptions=2, coupon_times_redeemed=2),
        "not for this plan": dict(plans=[basic]),
        "fixed amount in another currency": dict(percent=None, amount=100, currency="EUR"),
        "already used by you": {},
        "already discounted": dict(duration=DUR_FOREVER),  # a 'once' code is spent after the first invoice
    }
    kw = dict(percent="10") | setups[situation]
    make_code(session, kw.pop("code", "SAVE"), **kw)
    user = make_user()
    if situation in ("already used by you", "already discounted"):
        sub = subscribe(session, user, pro, NOW, BillingSettings(), promotion_code="SAVE")
        session.commit()
        if situation == "already discounted":
            make_code(session, "SECOND", percent="5")
            return lambda: coupons.redeem(session, user, sub, pro, "second", NOW)
        sub.status, sub.ended_at = "canceled", NOW
        session.commit()
    return lambda: subscribe(session, user, pro, NOW, BillingSettings(), promotion_code="save")


REFUSALS = [
    ("unknown", "unknown"),
    ("code paused", "paused"),
    ("coupon paused", "paused"),
    ("code expired", "expired"),
    ("coupon expired", "expired"),
    ("code used up", "used_up"),
    ("coupon used up", "used_up"),
    ("not for this plan", "not_for_plan"),
    ("fixed amount in another currency", "not_for_plan"),
    ("already used by you", "already_used"),
    ("already discounted", "already_discounted"),
]


@pytest.mark.parametrize("situation, reason", REFUSALS)
def test_a_bad_code_is_refused_with_its_reason(session, make_user, situation, reason):
    act = _refusal(session, make_user, situation)
    subs_before = session.scalar(select(func.count()).select_from(Subscription))
    with pytest.raises(coupons.CouponError) as refused:
        act()
    session.rollback()
    assert refused.value.reason == reason
    assert refused.value.code == f"coupon_{reason}" and refused.value.status == 422
    assert refused.value.message == coupons.REASONS[reason]
    assert session.scalar(select(func.count()).select_from(Subscription)) == subs_before


@pytest.mark.parametrize("typed", ["save", " Save ", "SAVE"])
def test_codes_are_case_insensitive(session, make_user, settings, typed):
    make_code(session, "SAVE", percent="10")
    preview = coupons.preview(session, None, find_plan(session, "pro"), typed, NOW)
    assert (preview.code, preview.price, preview.discount, preview.discounted) == ("SAVE", 2900, 290, 2610)


@pytest.mark.parametrize("typed", ["", "x" * 5000, "SA\x00VE", None])
def test_hostile_codes_are_unknown(session, typed):
    with pytest.raises(coupons.CouponError) as refused:
        coupons.preview(session, None, find_plan(session, "pro"), typed, NOW)
    assert refused.value.reason == "unknown"


def test_redemptions_are_counted_on_the_code_and_the_coupon(session, make_user, settings):
    promo = make_code(session, "COUNT", percent="10", max_redemptions=5)
    for _ in range(2):
        subscribe(session, make_user(), find_plan(session, "pro"), NOW, settings, promotion_code="count")
        session.commit()
    session.refresh(promo)
    assert (promo.times_redeemed, promo.coupon.times_redeemed) == (2, 2)
    assert session.scalar(select(func.count()).select_from(CouponRedemption)) == 2


def test_pausing_is_audited(session, make_user):
    promo = make_code(session, "AUD", percent="10")
    staff = make_user(is_staff=True)
    coupons.set_active(session, promo, False, NOW, staff.id)
    coupons.set_active(session, promo.coupon, False, NOW, staff.id)
    session.commit()
    from portal.models import AuditEntry

    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.object_type) for e in entries] == [("pause", "PromotionCode"), ("pause", "Coupon")]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite serialises writers: no race
def test_ten_customers_at_once_never_exceed_the_maximum(session, make_user, new_session, settings):
    """Ten simultaneous subscribes with a code that has three uses left: three win, seven are used up."""
    make_code(session, "RACE", percent="10", coupon_max_redemptions=3)
    users = [make_user().id for _ in range(10)]
    pro_id = find_plan(session, "pro").id
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def one(user_id: int) -> None:
        with new_session() as s:
            user, plan = s.get(User, user_id), s.get(Plan, pro_id)
            barrier.wait()
            try:
                subscribe(s, user, plan, NOW, settings, promotion_code="race")
                s.commit()
                outcomes.append("ok")
            except coupons.CouponError as exc:
                s.rollback()
                outcomes.append(exc.reason)

    threads = [threading.Thread(target=one, args=(uid,)) for uid in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.expire_all()
    assert sorted(outcomes) == ["ok"] * 3 + ["used_up"] * 7
    assert session.scalar(select(Coupon.times_redeemed)) == 3
    assert session.scalar(select(func.count()).select_from(CouponRedemption)) == 3
    assert session.scalar(select(func.count()).select_from(Subscription)) == 3


def test_the_document_shows_the_discount_line_and_the_tax_of_the_discounted_net(session, make_user):
    """The page, the PDF and the mails render this Document: the discount is its own line, same rate."""
    from portal.billing.documents import invoice_document
    from portal.billing.seller import Seller

    settings = BillingSettings(seller_country="FI")
    session.add(TaxRate(name="VAT", percent=Decimal(19), country="DE"))
    make_code(session, "DOC", percent="12.5")
    user = make_user(billing_country="DE")
    subscribe(session, user, find_plan(session, "pro"), NOW, settings, promotion_code="doc")
    session.commit()
    doc = invoice_document(session.scalars(select(Invoice)).one(), Seller())
    assert [(line.description, line.amount, line.tax_cents) for line in doc.lines] == [
        ("Pro plan", 2900, 551),
        ("Discount: DOC coupon", -363, -69),
    ]
    assert [(row.name, row.tax) for row in doc.taxes] == [("VAT", 482)]
    assert (doc.subtotal, doc.tax, doc.total) == (2537, 482, 3019)
