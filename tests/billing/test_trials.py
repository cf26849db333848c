"""Issue 12, item 8: one free trial per customer, whatever the plan."""

import pytest

from portal.billing.subscriptions import cancel, find_plan, subscribe, trial_available
from portal.models import SUB_ACTIVE, SUB_TRIALING, Invoice, Plan
from tests.conftest import utc


@pytest.fixture()
def trial_plans(session):
    for code, name, price in (("starter", "Starter", 500), ("team", "Team", 1500)):
        session.add(
            Plan(
                code=code,
                name=name,
                price=price,
                currency="USD",
                interval="month",
                trial_days=14,
                active=True,
                sort_order=9,
            )
        )
    session.flush()
    return find_plan(session, "starter"), find_plan(session, "team")


def invoices(session, user):
    return session.query(Invoice).filter_by(user_id=user.id).count()


def test_cancelling_and_subscribing_again_gives_no_second_trial(session, make_user, settings, trial_plans):
    starter, team = trial_plans
    user = make_user()
    first = subscribe(session, user, starter, utc(2024, 3, 1, 9), settings)
    assert first.status == SUB_TRIALING and first.current_period_end.isoformat() == "2024-03-15"
    assert invoices(session, user) == 0
    cancel(session, first, utc(2024, 3, 1, 10), at_once=True)
    again = subscribe(session, user, starter, utc(2024, 3, 1, 11), settings)
    assert again.status == SUB_ACTIVE and invoices(session, user) == 1  # billed at once
    cancel(session, again, utc(2024, 3, 2), at_once=True)
    other_plan = subscribe(session, user, team, utc(2024, 3, 3), settings)  # per customer, not per plan
    assert other_plan.status == SUB_ACTIVE and invoices(session, user) == 2


def test_a_former_paying_customer_gets_no_trial_either(session, make_user, settings, trial_plans):
    starter, _ = trial_plans
    user = make_user()
    cancel(
        session,
        subscribe(session, user, find_plan(session, "basic"), utc(2024, 1, 1), settings),
        utc(2024, 1, 2),
        at_once=True,
    )
    assert not trial_available(session, user.id)
    assert subscribe(session, user, starter, utc(2024, 2, 1), settings).status == SUB_ACTIVE


def test_each_new_customer_still_gets_their_trial(session, make_user, settings, trial_plans):
    starter, _ = trial_plans
    for _ in range(2):
        assert subscribe(session, make_user(), starter, utc(2024, 3, 1), settings).status == SUB_TRIALING
