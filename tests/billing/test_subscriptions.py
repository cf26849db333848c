import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.billing import credits
from portal.billing.errors import BillingError
from portal.billing.invoicing import run_billing
from portal.billing.subscriptions import (
    cancel,
    change_plan,
    find_plan,
    preview_change,
    resume,
    subscribe,
)
from portal.models import Invoice, Plan, Subscription
from tests.conftest import utc

D = dt.date


def invoices_of(session, sub):
    return session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id).order_by(Invoice.id)).all()


def test_subscribe_issues_the_first_invoice_at_once(session, make_user, settings):
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 31, 9), settings)
    assert sub.status == "active"
    assert (sub.current_period_start, sub.current_period_end) == (D(2024, 1, 31), D(2024, 2, 29))
    [inv] = invoices_of(session, sub)
    assert (inv.period_start, inv.period_end, inv.total, inv.currency) == (D(2024, 1, 31), D(2024, 2, 29), 2900, "USD")
    assert inv.status == "open" and inv.due_date == D(2024, 2, 14)
    [line] = inv.lines  # a period invoice has its one line: plan, period, quantity, unit price
    assert (line.description, line.quantity, line.unit_amount, line.amount) == ("Pro plan", 1, 2900, 2900)
    assert (line.period_start, line.period_end) == (D(2024, 1, 31), D(2024, 2, 29))
    assert inv.number == "INV-000001" and (inv.subtotal_cents, inv.tax_cents) == (2900, 0)
    assert [(line.description, line.amount) for line in inv.display_lines] == [("Pro plan", 2900)]


def test_trial_bills_when_it_ends(session, make_user, settings):
    plan = Plan(code="trial", name="Trial", price=1000, currency="USD", interval="month", trial_days=14)
    session.add(plan)
    sub = subscribe(session, make_user(), plan, utc(2024, 3, 1, 12), settings)
    assert sub.status == "trialing" and invoices_of(session, sub) == []
    run_billing(session, utc(2024, 3, 14, 12), settings, session.commit)
    assert invoices_of(session, sub) == []
    run_billing(session, utc(2024, 3, 15, 12), settings, session.commit)
    session.refresh(sub)
    [inv] = invoices_of(session, sub)
    assert sub.status == "active" and inv.period_start == D(2024, 3, 15) and inv.period_end == D(2024, 4, 15)


def test_cannot_subscribe_twice(session, make_user, settings):
    user = make_user()
    subscribe(session, user, find_plan(session, "basic"), utc(2024, 1, 1), settings)
    with pytest.raises(BillingError) as err:
        subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 2), settings)
    assert err.value.code == "already_subscribed"


def test_database_allows_one_live_subscription_per_user(session, make_user, settings):
    user = make_user()
    first = subscribe(session, user, find_plan(session, "basic"), utc(2024, 1, 1), settings)
    session.commit()
    twin = Subscription(
        user_id=user.id,
        plan_id=first.plan_id,
        status="active",
        interval_months=1,
        anchor=D(2024, 1, 1),
        next_period_start=D(2024, 2, 1),
        current_period_start=D(2024, 1, 1),
        current_period_end=D(2024, 2, 1),
    )
    session.add(twin)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    # Once the first has ended, a new one is allowed.
    cancel(session, session.get(Subscription, first.id), utc(2024, 1, 5), at_once=True)
    subscribe(session, session.get(type(user), user.id), find_plan(session, "pro"), utc(2024, 1, 6), settings)
    session.commit()


def test_unknown_and_archived_plans_are_refused(session):
    with pytest.raises(
        BillingError,
        match="Unknown plan 'gold'; choose one of: basic, basic-yearly, pro, pro-yearly, enterprise, enterprise-yearly",
    ):
        find_plan(session, "gold")
    session.scalar(select(Plan).where(Plan.code == "basic")).active = False
    with pytest.raises(BillingError):
        find_plan(session, "basic")


def test_database_refuses_a_negative_price(session):
    session.add(Plan(code="bad", name="Bad", price=-1, currency="USD", interval="month"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def _state(session, make_user, settings, state):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    if state == "canceling":
        cancel(session, sub, utc(2024, 1, 11))
    elif state == "canceled":
        cancel(session, sub, utc(2024, 1, 11), at_once=True)
    elif state == "past_due":
        sub.status = "past_due"
    return sub


@pytest.mark.parametrize(
    "start, event, expected",
    [
        ("active", "cancel", ("active", True)),
        ("active", "cancel_now", ("canceled", False)),
        ("active", "resume", "not_canceling"),
        ("canceling", "resume", ("active", False)),
        ("canceling", "cancel", "already_canceling"),
        ("canceling", "cancel_now", ("canceled", False)),
        ("past_due", "cancel", ("past_due", True)),
        ("canceled", "cancel", "not_live"),
        ("canceled", "cancel_now", "not_live"),
        ("canceled", "resume", "not_canceling"),
    ],
)
def test_state_changes(session, make_user, settings, start, event, expected):
    sub = _state(session, make_user, settings, start)
    now = utc(2024, 1, 20)
    act = {
        "cancel": lambda: cancel(session, sub, now),
        "cancel_now": lambda: cancel(session, sub, now, at_once=True),
        "resume": lambda: resume(session, sub, now),
    }[event]
    if isinstance(expected, str):
        with pytest.raises(BillingError) as err:
            act()
        assert err.value.code == expected
    else:
        act()
        assert (sub.status, sub.cancel_at_period_end) == expected


def test_cancel_at_period_end_stops_billing_then(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    cancel(session, sub, utc(2024, 1, 20))
    session.commit()
    run_billing(session, utc(2024, 2, 9), settings, session.commit)
    session.refresh(sub)
    assert sub.status == "active" and sub.cancel_at_period_end
    result = run_billing(session, utc(2024, 2, 10), settings, session.commit)
    session.refresh(sub)
    assert (result.ended, result.invoices) == (1, 0)
    assert sub.status == "canceled" and sub.ended_at is not None
    assert len(invoices_of(session, sub)) == 1


def test_resume_keeps_billing(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    cancel(session, sub, utc(2024, 1, 20))
    resume(session, sub, utc(2024, 1, 25))
    session.commit()
    run_billing(session, utc(2024, 2, 10), settings, session.commit)
    assert len(invoices_of(session, sub)) == 2


def test_resume_after_the_period_is_refused(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    cancel(session, sub, utc(2024, 1, 20))
    with pytest.raises(BillingError) as err:
        resume(session, sub, utc(2024, 2, 10))
    assert err.value.code == "period_over"


@pytest.mark.parametrize(
    "old, new, today, expected",
    [
        # Period Jan 10 - Feb 10 (31 days); Pro 2900, Enterprise 9900, Basic 900.
        ("pro", "enterprise", D(2024, 1, 10), ("upgrade", 7000, 31)),  # whole period left
        ("pro", "enterprise", D(2024, 1, 25), ("upgrade", 3613, 16)),  # 7000 * 16/31 = 3612.9
        ("basic", "pro", D(2024, 2, 9), ("upgrade", 65, 1)),  # 2000 * 1/31 = 64.5 -> 65
        ("enterprise", "basic", D(2024, 1, 25), ("downgrade", 4645, 16)),  # credit: 9000 * 16/31 = 4645.2
    ],
)
def test_proration_amounts(session, make_user, settings, old, new, today, expected):
    sub = subscribe(session, make_user(), find_plan(session, old), utc(2024, 1, 10), settings)
    change = preview_change(sub, find_plan(session, new), today)
    assert (change.kind, change.amount, change.days_left) == expected
    assert change.period_days == 31


def test_upgrade_now_issues_a_prorated_invoice(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    _change, invoice = change_plan(session, sub, find_plan(session, "enterprise"), utc(2024, 1, 25), settings)
    assert sub.plan.code == "enterprise"
    assert (invoice.kind, invoice.total, invoice.period_start, invoice.period_end) == (
        "proration",
        3613,
        D(2024, 1, 25),
        D(2024, 2, 10),
    )
    assert "Upgrade from Pro to Enterprise" in invoice.lines[0].description
    session.commit()
    run_billing(session, utc(2024, 2, 10), settings, session.commit)
    assert invoices_of(session, sub)[-1].total == 9900


def test_downgrade_applies_now_and_credits_the_unused_time(session, make_user, settings):
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "enterprise"), utc(2024, 1, 10), settings)
    change, invoice = change_plan(session, sub, find_plan(session, "basic"), utc(2024, 1, 25), settings)
    assert invoice is None and change.effective == D(2024, 1, 25)
    assert sub.plan.code == "basic" and sub.pending_plan_id is None
    assert credits.balance(session, user.id, "USD") == 4645
    session.commit()
    run_billing(session, utc(2024, 2, 10), settings, session.commit)
    session.refresh(sub)
    assert sub.plan.code == "basic" and sub.pending_plan_id is None
    invoices = invoices_of(session, sub)
    for inv in invoices:
        session.refresh(inv)
    # The next invoice is paid by the credit; what is left pays the following ones.
    assert [(i.total, i.credit_applied_cents, i.status) for i in invoices] == [(9900, 0, "open"), (900, 900, "paid")]
    assert credits.balance(session, user.id, "USD") == 4645 - 900


def test_down_and_up_again_the_same_day_credits_what_it_charges(session, make_user, settings):
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10), settings)
    down, _ = change_plan(session, sub, find_plan(session, "basic"), utc(2024, 1, 13), settings)
    up, invoice = change_plan(session, sub, find_plan(session, "pro"), utc(2024, 1, 13), settings)
    assert (down.kind, down.amount, up.kind, up.amount) == ("downgrade", 1806, "upgrade", 1806)
    # The upgrade's prorated invoice is paid by the downgrade's credit at once.
    assert (invoice.total, invoice.credit_applied_cents, invoice.status) == (1806, 1806, "paid")
    assert credits.balance(session, user.id, "USD") == 0
    with pytest.raises(BillingError) as err:
        change_plan(session, sub, find_plan(session, "pro"), utc(2024, 1, 14), settings)
    assert err.value.code == "same_plan"


def test_plan_in_another_currency_is_incompatible(session, make_user, settings):
    session.add(Plan(code="pro-eur", name="Pro", price=2700, currency="EUR", interval="month"))
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    with pytest.raises(BillingError) as err:
        preview_change(sub, find_plan(session, "pro-eur"), D(2024, 1, 11))
    assert err.value.code == "incompatible_plan"
