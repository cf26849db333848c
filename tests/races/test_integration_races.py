"""The same request ten times at once, on PostgreSQL under gunicorn, for what automatic
collection, billing details and the server API added: each acts once and never 500s."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from portal.billing.collection import CardDetails, save_card
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, PaymentAttempt, Subscription, User, utcnow
from portal.tokens import issue, issue_server_key
from tests.conftest import utc
from tests.races.conftest import at_once, browser_session, no_server_errors

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

DECLINES = CardDetails("demo", "pm_demo_decline_1", "visa", "0341", 12, 2034)


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_ten_subscribes_with_one_idempotency_key_subscribe_once(live, session, make_user):
    base, instance = live
    user = make_user(email="idem@example.com")
    secret = issue(session, user, "race", utcnow())[1]
    session.commit()
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "subscribe-once-1"}
    responses = at_once(
        [lambda: requests.post(f"{base}/api/subscribe/", json={"plan": "pro"}, headers=headers, timeout=60)] * 10
    )
    no_server_errors(responses, instance)
    assert count(session, Subscription, Subscription.user_id == user.id) == 1
    assert count(session, Invoice, Invoice.user_id == user.id) == 1
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.status_code for r in responses]
    assert len({r.text for r in created}) == 1, "a replay answers the first response"
    # A request still in flight under the same key is refused with a 409 saying so, never a second subscription.
    assert {r.status_code for r in responses} <= {201, 409}


def test_ten_billing_detail_patches_at_once_never_500(live, session, make_user):
    base, instance = live
    user = make_user(email="details@example.com")
    secret = issue(session, user, "race", utcnow())[1]
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"company": "Engines GmbH", "country": "DE", "tax_id": "DE136695976"}
    responses = at_once(
        [lambda: requests.patch(f"{base}/api/billing-details/", json=body, headers=headers, timeout=60)] * 10
    )
    no_server_errors(responses, instance)
    assert {r.status_code for r in responses} == {200}
    session.expire_all()
    saved = session.get(User, user.id)
    assert (saved.billing_company, saved.billing_country, saved.tax_id) == ("Engines GmbH", "DE", "DE136695976")


def test_ten_charge_nows_at_once_make_one_attempt(live, session, make_user, settings):
    base, instance = live
    make_user(email="staff-racer@example.com", is_staff=True)
    user = make_user(email="charged@example.com")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    session.commit()
    save_card(session, user.id, DECLINES, utc(2024, 1, 10, 10))
    session.commit()
    invoice_id = session.scalar(select(Invoice.id).where(Invoice.user_id == user.id))
    before = count(session, PaymentAttempt)
    staff = browser_session(base, "staff-racer@example.com")
    url = f"{base}/admin/invoice/charge-now/?id={invoice_id}"
    responses = at_once(
        [lambda: staff.post(url, data={"csrf_token": staff.csrf}, allow_redirects=False, timeout=60)] * 10
    )
    no_server_errors(responses, instance)
    assert {r.status_code for r in responses} == {302}
    assert count(session, PaymentAttempt) - before == 1


def test_ten_creations_of_one_customer_by_a_server_key_make_one(live, session, make_user):
    base, instance = live
    staff = make_user(email="keys@example.com", is_staff=True)
    secret = issue_server_key(session, "crm", "write", utcnow(), actor_id=staff.id)[1]
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"email": "New.Customer@Example.com", "name": "New"}
    responses = at_once([lambda: requests.post(f"{base}/api/customers/", json=body, headers=headers, timeout=60)] * 10)
    no_server_errors(responses, instance)
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert count(session, User, User.email == "new.customer@example.com") == 1
