"""A plan's price edited by staff never silently changes what existing subscribers pay:
new subscribers only, or existing ones from their first period starting on or after the
notice's day plus PRICE_CHANGE_NOTICE_DAYS, with a notice mailed now."""

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from portal.billing import pricing
from portal.billing.errors import BillingError
from portal.billing.invoicing import run_billing
from portal.billing.subscriptions import change_plan, find_plan, subscribe
from portal.models import NOTE_PRICE_CHANGE, AuditEntry, Invoice, Notification, Subscription
from tests.conftest import utc

D = dt.date


def totals(session, sub):
    rows = session.execute(
        select(Invoice.period_start, Invoice.total).where(Invoice.subscription_id == sub.id).order_by(Invoice.id)
    )
    return [tuple(r) for r in rows]


def run_until(session, settings, *days):
    for day in days:
        run_billing(session, utc(day.year, day.month, day.day, 1), settings, session.commit)


# (plan, subscribed on, changed on, mode, notice days, new price, runs on, expected (period start, total), changes on)
TABLE = [
    # New subscribers only: the subscriber keeps 29.00 for good.
    ("pro", D(2024, 1, 10), D(2024, 1, 15), "new_only", 30, 3900,
     [D(2024, 2, 10), D(2024, 3, 10)], [(D(2024, 1, 10), 2900), (D(2024, 2, 10), 2900), (D(2024, 3, 10), 2900)], None),
    # Existing ones after 30 days' notice: Feb 10 starts before Feb 14, so March is the first at 39.00.
    ("pro", D(2024, 1, 10), D(2024, 1, 15), "existing", 30, 3900,
     [D(2024, 2, 10), D(2024, 3, 10), D(2024, 4, 10)],
     [(D(2024, 1, 10), 2900), (D(2024, 2, 10), 2900), (D(2024, 3, 10), 3900), (D(2024, 4, 10), 3900)], D(2024, 3, 10)),
    # A shorter notice period (configured): Feb 10 is on the day the notice runs out.
    ("pro", D(2024, 1, 10), D(2024, 1, 31), "existing", 10, 3900,
     [D(2024, 2, 10)], [(D(2024, 1, 10), 2900), (D(2024, 2, 10), 3900)], D(2024, 2, 10)),
    # A cut in price reaches existing subscribers the same way.
    ("pro", D(2024, 1, 10), D(2024, 1, 15), "existing", 30, 1900,
     [D(2024, 2, 10), D(2024, 3, 10)], [(D(2024, 1, 10), 2900), (D(2024, 2, 10), 2900), (D(2024, 3, 10), 1900)],
     D(2024, 3, 10)),
    # Yearly: the next year's invoice is the first at the new price.
    ("pro-yearly", D(2024, 1, 10), D(2024, 6, 1), "existing", 30, 35000,
     [D(2025, 1, 10)], [(D(2024, 1, 10), 29000), (D(2025, 1, 10), 35000)], D(2025, 1, 10)),
]  # fmt: skip


@pytest.mark.parametrize("code, start, day, mode, notice_days, new_price, runs, expected, changes_on", TABLE)
def test_price_change_table(
    session, make_user, settings, code, start, day, mode, notice_days, new_price, runs, expected, changes_on
):
    settings = dataclasses.replace(settings, price_change_notice_days=notice_days)
    user = make_user(name="Ada")
    plan = find_plan(session, code)
    sub = subscribe(session, user, plan, utc(start.year, start.month, start.day, 9), settings)
    old_price = plan.price

    done = pricing.change_price(
        session, plan, new_price, mode, utc(day.year, day.month, day.day), settings, actor_id=None
    )

    assert plan.price == new_price and done.subscribers == 1
    assert pricing.price_change_date(sub) == changes_on
    notices = session.scalars(select(Notification).where(Notification.kind == NOTE_PRICE_CHANGE)).all()
    if mode == "existing":
        [note] = notices
        assert note.user_id == user.id
        assert f"{changes_on:%B %-d, %Y}" in note.subject and f"{changes_on:%B %-d, %Y}" in note.body
        assert f"${old_price / 100:,.2f}" in note.body and f"${new_price / 100:,.2f}" in note.body
    else:
        assert notices == []
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "change_price")).all()
    wanted = "new subscribers only" if mode == "new_only" else f"on or after {day + dt.timedelta(days=notice_days)}"
    assert entry.object_id == plan.id and wanted in entry.detail
    session.commit()
    run_until(session, settings, *runs)
    assert totals(session, sub) == expected
    # A new subscriber pays the new price from the start.
    newcomer = subscribe(session, make_user(), plan, utc(runs[-1].year, runs[-1].month, runs[-1].day, 12), settings)
    assert newcomer.price == new_price and totals(session, newcomer)[0][1] == new_price


def test_rows_without_a_price_of_their_own_keep_the_old_one(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    sub.price = None  # made before subscriptions kept their price: it followed the plan's
    session.commit()
    pricing.change_price(session, find_plan(session, "pro"), 3900, "new_only", utc(2024, 1, 15), settings)
    assert sub.price == 2900
    run_until(session, settings, D(2024, 2, 10))
    assert totals(session, sub)[-1] == (D(2024, 2, 10), 2900)


def test_a_scheduled_plan_change_brings_its_own_price(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    change_plan(session, sub, find_plan(session, "basic"), utc(2024, 1, 12), settings)  # downgrade on Feb 10
    pricing.change_price(session, find_plan(session, "pro"), 3900, "existing", utc(2024, 1, 15), settings)
    assert pricing.price_change_date(sub) is None
    assert session.scalars(select(Notification).where(Notification.kind == NOTE_PRICE_CHANGE)).all() == []
    run_until(session, settings, D(2024, 2, 10), D(2024, 3, 10))
    assert [t for _, t in totals(session, sub)] == [2900, 900, 900]


def test_an_upgrade_drops_an_announced_price(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    pricing.change_price(session, find_plan(session, "pro"), 3900, "existing", utc(2024, 1, 11), settings)
    change_plan(session, sub, find_plan(session, "enterprise"), utc(2024, 1, 20), settings)
    assert (sub.price, sub.pending_price, pricing.price_change_date(sub)) == (9900, None, None)


def test_cancelled_subscriptions_are_left_alone(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    sub.status = "canceled"
    session.commit()
    done = pricing.change_price(session, find_plan(session, "pro"), 3900, "existing", utc(2024, 1, 11), settings)
    assert (done.subscribers, done.notified, sub.pending_price) == (0, 0, None)


@pytest.mark.parametrize(
    "price, mode, code",
    [
        (2900, "existing", "same_price"),
        (-1, "new_only", "invalid"),
        (3900, "everyone", "invalid"),
        (2**63, "new_only", "invalid"),
    ],
)
def test_refused_price_changes(session, settings, price, mode, code):
    plan = find_plan(session, "pro")
    with pytest.raises(BillingError) as err:
        pricing.change_price(session, plan, price, mode, utc(2024, 1, 11), settings)
    assert err.value.code == code and plan.price == 2900
    assert session.scalar(select(Subscription.id)) is None
