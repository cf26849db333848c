"""The customer's pages show paused collection and the plans' features."""

from sqlalchemy import select

from portal.billing.subscriptions import pause
from portal.models import Subscription
from tests.conftest import utc


def test_pricing_lists_each_plans_features(client, session):
    html = client.get("/pricing").get_data(as_text=True)
    assert "Seats: <strong>10</strong>" in html and "Priority support" in html and "Account manager" in html


def test_a_paused_subscription_says_so_and_offers_resume(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    pause(session, session.scalar(select(Subscription)), utc(2024, 1, 15))
    session.commit()
    html = client.get("/account").get_data(as_text=True)
    assert "Paused" in html and "Since Jan 15, 2024" in html and "Resume payments" in html
    hx = {"HX-Request": "true", "HX-Target": "subscription"}
    resumed = client.post("/account/unpause", headers=hx).get_data(as_text=True)
    assert "Payments resume" in resumed and "Resume payments" not in resumed
    session.expire_all()
    assert session.scalar(select(Subscription)).paused_at is None


def test_resume_without_javascript_redirects_and_a_second_resume_explains(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    pause(session, session.scalar(select(Subscription)), utc(2024, 1, 15))
    session.commit()
    assert client.post("/account/unpause").location == "/account"
    again = client.post("/account/unpause", follow_redirects=True).get_data(as_text=True)
    assert "Collection is not paused." in again
