"""Issue 12, item 8, as the pages show it: a trial is offered only to those who can have one."""

from flask import g

from portal.billing.subscriptions import cancel, subscribe
from tests.billing.test_trials import trial_plans  # noqa: F401  (fixture)
from tests.conftest import login, utc


def test_the_pricing_page_offers_a_trial_only_to_those_who_can_have_one(
    app, client, session, make_user, settings, trial_plans
):
    starter, _ = trial_plans
    session.commit()
    assert "14-day free trial" in app.test_client().get("/pricing").get_data(as_text=True)
    g.pop("_login_user", None)  # the fixtures' app context is shared by every request
    user = make_user()
    session.commit()
    login(client, user)
    assert "14-day free trial" in client.get("/pricing").get_data(as_text=True)
    cancel(session, subscribe(session, user, starter, utc(2024, 3, 1), settings), utc(2024, 3, 1), at_once=True)
    session.commit()
    assert "14-day free trial" not in client.get("/pricing").get_data(as_text=True)


def test_the_summary_before_subscribing_tells_a_returning_customer_the_truth(
    app, client, session, make_user, settings, trial_plans
):
    starter, _ = trial_plans
    user = make_user()
    cancel(session, subscribe(session, user, starter, utc(2024, 3, 1), settings), utc(2024, 3, 1), at_once=True)
    session.commit()
    login(client, user)
    summary = client.get("/subscribe?plan=starter").get_data(as_text=True)
    assert "Free trial" not in summary and 'id="due-today">$5.00<' in summary
