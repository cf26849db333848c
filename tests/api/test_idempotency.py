import datetime as dt
import json

import pytest
import requests
from sqlalchemy import func, select

from portal import tokens
from portal.models import IdempotencyKey, Invoice, Subscription, User, utcnow
from tests.races.conftest import at_once, live, no_server_errors  # noqa: F401  (live is a fixture)


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_a_repeat_with_the_same_key_and_body_gets_the_first_answer(customer_token, session):
    key = {"Idempotency-Key": "sub-1"}
    first = customer_token.post("/api/subscribe/", {"plan": "pro"}, headers=key)
    again = customer_token.post("/api/subscribe/", {"plan": "pro"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert count(session, Subscription) == 1 and count(session, Invoice) == 1
    # without the key, the same request acts again (and is refused: already subscribed)
    assert customer_token.post("/api/subscribe/", {"plan": "pro"}).status_code == 409


def test_the_same_key_with_another_body_is_refused(customer_token, session):
    key = {"Idempotency-Key": "sub-1"}
    assert customer_token.post("/api/subscribe/", {"plan": "pro"}, headers=key).status_code == 201
    other = customer_token.post("/api/subscribe/", {"plan": "basic"}, headers=key)
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"
    elsewhere = customer_token.post("/api/unsubscribe/", {}, headers=key)
    assert elsewhere.status_code == 422


def test_keys_belong_to_their_caller_and_expire_after_a_day(customer_token, server_key, session, config, clock):
    key = {"Idempotency-Key": "k"}
    made = server_key.post("/api/customers/", {"email": "a@example.com"}, headers=key)
    assert made.status_code == 201
    # another caller's identical key is its own
    assert customer_token.post("/api/subscribe/", {"plan": "pro"}, headers=key).status_code == 201
    config["CLOCK"] = lambda: clock + dt.timedelta(hours=25)
    again = server_key.post("/api/customers/", {"email": "a@example.com"}, headers=key)
    assert again.status_code == 409  # forgotten: the request ran again and found the customer
    assert count(session, User) == 3  # staff, the token owner, a@: no second a@


def test_a_failed_request_is_not_remembered(customer_token, session):
    key = {"Idempotency-Key": "pay-1"}
    assert customer_token.post("/api/subscription/pause/", headers=key).status_code == 404
    assert count(session, IdempotencyKey) == 0
    customer_token.post("/api/subscribe/", {"plan": "pro"})
    assert customer_token.post("/api/subscription/pause/", headers=key).status_code == 200


@pytest.mark.parametrize("value", ["", "x" * 256, "naïve"])
def test_a_bad_key_is_a_400(customer_token, value):
    response = customer_token.post("/api/subscribe/", {"plan": "pro"}, headers={"Idempotency-Key": value})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_idempotency_key"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_ten_concurrent_duplicates_act_once(live, session, make_user):
    base, instance = live
    user = make_user(email="race@example.com")
    _, secret = tokens.issue(session, user, "race", utcnow())
    session.commit()
    headers = {
        "Authorization": f"Bearer {secret}",
        "Content-Type": "application/json",
        "Idempotency-Key": "once",
    }
    body = json.dumps({"plan": "pro"})
    calls = [lambda: requests.post(f"{base}/api/subscribe/", data=body, headers=headers, timeout=60)] * 10
    responses = at_once(calls)
    no_server_errors(responses, instance)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    first = [r for r in responses if r.status_code == 201]
    assert first and all(r.json() == first[0].json() for r in first)
    assert count(session, Subscription) == 1 and count(session, Invoice) == 1
    assert count(session, IdempotencyKey) == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_ten_concurrent_pauses_and_customer_creations_never_500(live, session, make_user):
    """Without an Idempotency-Key: the same write ten times at once acts once, the rest are 409s."""
    base, instance = live
    staff = make_user(email="staff@example.com", is_staff=True)
    customer = make_user(email="c@example.com")
    from portal.billing.settings import BillingSettings
    from portal.billing.subscriptions import find_plan, subscribe

    subscribe(session, customer, find_plan(session, "pro"), utcnow(), BillingSettings())
    _, secret = tokens.issue_server_key(session, "race", "write", utcnow(), actor_id=staff.id)
    session.commit()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    pause_url = f"{base}/api/customers/{customer.id}/subscription/pause/"
    create = json.dumps({"email": "new@example.com"})
    calls = [lambda: requests.post(pause_url, data="{}", headers=headers, timeout=60)] * 10
    calls += [lambda: requests.post(f"{base}/api/customers/", data=create, headers=headers, timeout=60)] * 10
    responses = at_once(calls)
    no_server_errors(responses, instance)
    pauses, creations = responses[:10], responses[10:]
    assert sorted(r.status_code for r in pauses) == [200] + [409] * 9
    assert sorted(r.status_code for r in creations) == [201] + [409] * 9
    assert count(session, User) == 3
