"""Saving a card ten times at once (a double-clicked "Save card", two tabs) on PostgreSQL
under gunicorn: one card, one charge of the open invoice, never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, Payment, PaymentAttempt, PaymentMethod
from tests.conftest import utc
from tests.races.conftest import at_once, browser_session, no_server_errors

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_ten_saves_of_the_same_card_at_once_make_one_card_and_one_charge(live, session, make_user, settings):
    base, instance = live
    user = make_user(email="racer@example.com")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    session.commit()
    web = browser_session(base, user.email)
    started = web.post(f"{base}/account/card", data={"csrf_token": web.csrf}, allow_redirects=False, timeout=30)
    assert started.status_code == 303 and "/demo/card/" in started.headers["Location"]
    url = base + started.headers["Location"]
    form = {"csrf_token": web.csrf, "number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2034"}
    responses = at_once([lambda: web.post(url, data=form, allow_redirects=False, timeout=60) for _ in range(10)])
    no_server_errors(responses, instance)
    assert {r.status_code for r in responses} == {303}
    assert count(session, PaymentMethod) == 1
    assert count(session, PaymentAttempt) == 1 and count(session, Payment) == 1
    assert session.scalar(select(Invoice.status)) == "paid"
