"""Pausing collection: the billing run skips a paused subscription; unpausing bills from today's period."""

import datetime as dt

import pytest
from sqlalchemy import select

from portal.billing import entitlements
from portal.billing.errors import BillingError
from portal.billing.invoicing import run_billing
from portal.billing.subscriptions import cancel, find_plan, pause, subscribe, unpause
from portal.models import AuditEntry, Invoice, Plan
from tests.conftest import utc

D = dt.date


def periods_billed(session, sub):
    return [
        i.period_start
        for i in session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id).order_by(Invoice.id))
    ]


def test_a_paused_subscription_gets_no_invoices_and_resumes_from_todays_period(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    pause(session, sub, utc(2024, 1, 20))
    for day in (D(2024, 2, 10), D(2024, 3, 10), D(2024, 4, 12)):
        run_billing(session, utc(day.year, day.month, day.day, 1), settings, session.commit)
    assert periods_billed(session, sub) == [D(2024, 1, 10)]
    unpause(session, sub, utc(2024, 4, 15, 8))
    assert sub.paused_at is None and sub.next_period_start == D(2024, 4, 10)
    run_billing(session, utc(2024, 4, 15, 9), settings, session.commit)
    run_billing(session, utc(2024, 5, 10, 9), settings, session.commit)
    # Feb and Mar fell wholly inside the pause: never billed; April (today's) and May are
    assert periods_billed(session, sub) == [D(2024, 1, 10), D(2024, 4, 10), D(2024, 5, 10)]


def test_unpausing_within_the_billed_period_changes_nothing(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    pause(session, sub, utc(2024, 1, 12))
    unpause(session, sub, utc(2024, 1, 20))
    assert sub.next_period_start == D(2024, 2, 10)
    run_billing(session, utc(2024, 2, 10, 1), settings, session.commit)
    assert periods_billed(session, sub) == [D(2024, 1, 10), D(2024, 2, 10)]


def test_a_paused_subscription_set_to_cancel_still_ends(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    cancel(session, sub, utc(2024, 1, 11))
    pause(session, sub, utc(2024, 1, 12))
    run_billing(session, utc(2024, 2, 10, 1), settings, session.commit)
    assert sub.status == "canceled" and periods_billed(session, sub) == [D(2024, 1, 10)]


def test_pause_and_unpause_refuse_what_makes_no_sense_and_audit_staff(session, make_user, settings):
    staff = make_user(is_staff=True)
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    with pytest.raises(BillingError) as refused:
        unpause(session, sub, utc(2024, 1, 11))
    assert refused.value.code == "not_paused"
    pause(session, sub, utc(2024, 1, 11), actor_id=staff.id)
    with pytest.raises(BillingError) as refused:
        pause(session, sub, utc(2024, 1, 11))
    assert refused.value.code == "already_paused"
    unpause(session, sub, utc(2024, 1, 12), actor_id=staff.id)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == staff.id)).all()
    assert actions == ["pause", "unpause"]
    cancel(session, sub, utc(2024, 1, 13), at_once=True)
    with pytest.raises(BillingError):
        pause(session, sub, utc(2024, 1, 14))


def test_entitlements_follow_the_subscription(session, make_user, settings):
    plan = session.scalar(select(Plan).where(Plan.code == "pro"))
    plan.features = {"seats": 10, "priority_support": True}
    user = make_user()
    none = entitlements.for_customer(session, user.id, utc(2024, 1, 1))
    assert (none.entitled, none.reason, none.features) == (False, "no_subscription", {})
    sub = subscribe(session, user, plan, utc(2024, 1, 10, 9), settings)
    now = entitlements.for_customer(session, user.id, utc(2024, 1, 11))
    assert now.entitled and now.reason is None and now.features == {"seats": 10, "priority_support": True}
    sub.status = "past_due"
    assert entitlements.for_customer(session, user.id, utc(2024, 1, 11)).reason == "past_due"
    sub.status = "active"
    session.flush()
    pause(session, sub, utc(2024, 1, 12))
    paused = entitlements.for_customer(session, user.id, utc(2024, 1, 12))
    assert (paused.entitled, paused.reason, paused.paused) == (False, "paused", True)
    unpause(session, sub, utc(2024, 1, 13))
    cancel(session, sub, utc(2024, 1, 13))
    assert entitlements.for_customer(session, user.id, utc(2024, 2, 9, 23)).entitled  # until the period ends
    assert entitlements.for_customer(session, user.id, utc(2024, 2, 10, 0, 5)).reason == "ended"  # run or not
    cancel(session, sub, utc(2024, 1, 13), at_once=True)
    ended = entitlements.for_customer(session, user.id, utc(2024, 1, 14))
    assert (ended.entitled, ended.reason, ended.status, ended.features) == (False, "ended", "canceled", {})


@pytest.mark.parametrize(
    "raw, message",
    [
        ("[1]", "JSON object"),
        ("{bad", "valid JSON"),
        ('{"Seats": 1}', "Feature name"),
        ('{"seats": -1}', "whole number from 0"),
        ('{"seats": 1.5}', "true/false"),
        ('{"seats": NaN}', "true/false"),
        ('{"seats": {"a": 1}}', "true/false"),
    ],
)
def test_features_are_checked(raw, message):
    with pytest.raises(entitlements.FeaturesError, match=message):
        entitlements.validate_features(raw)


def test_features_accept_switches_limits_and_text():
    assert entitlements.validate_features(' {"seats": 10, "sso": false, "support": "email"} ') == {
        "seats": 10,
        "sso": False,
        "support": "email",
    }
    assert entitlements.validate_features("") == {}
