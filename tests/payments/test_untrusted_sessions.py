"""Signed events and re-fetched sessions the database could not hold are a clear answer, never a 500.

The real stripe SDK parses what the local fake Stripe (tests/payments/fake_stripe.py) answers;
the fake is made to answer with sessions the app cannot trust (ids past 2^63-1, NUL bytes,
lone surrogates, a session other than the one asked for). Run on SQLite and PostgreSQL: the
PostgreSQL half is where such values were a DataError or UnicodeEncodeError.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.models import Invoice, Payment, WebhookEvent
from tests.payments.fake_stripe import event
from tests.payments.test_stripe import deliver, fake_stripe, pay, started_session, stripe_on  # noqa: F401

BAD_EVENTS = {
    "lone surrogate in id": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "id": "evt_\ud800"},
    "lone surrogate in type": lambda sid: {
        **event("evt_1", "checkout.session.completed", sid),
        "type": "checkout.session.\udfff",
    },
    "type too long": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "type": "x" * 121},
    "id too long": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "id": "e" * 256},
    "lone surrogate in object id": lambda sid: {**event("evt_1", "checkout.session.completed", "cs_\ud800")},
}


@pytest.mark.parametrize("case", BAD_EVENTS)
def test_a_signed_event_with_text_the_database_cannot_hold_is_a_400(client, customer, stripe_on, session, case):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    response = deliver(client, BAD_EVENTS[case](sid))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["error"]["code"] == "malformed_event"
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert session.get(Invoice, 1).status == "open" and session.scalar(select(Payment)) is None


UNTRUSTED = {
    "client_reference_id 2^63": {"client_reference_id": str(2**63)},
    "client_reference_id superscript two": {"client_reference_id": "\u00b2"},
    "client_reference_id not a number": {"client_reference_id": "1; drop"},
    "amount_total 2^63": {"amount_total": 2**63},
    "negative amount_total": {"amount_total": -2900},
    "amount_total a string": {"amount_total": "2900"},
    "NUL in currency": {"currency": "us\x00"},
    "currency too long": {"currency": "usdollars"},
    "currency a number": {"currency": 840},
    "lone surrogate in payment_intent": {"payment_intent": "pi_\ud800"},
    "not a checkout session": {"object": "customer"},
}


@pytest.mark.parametrize("case", UNTRUSTED)
def test_a_refetched_session_the_app_cannot_trust_is_recorded_as_an_error(client, customer, stripe_on, session, case):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    stripe_on.tamper(sid, **UNTRUSTED[case])
    response = deliver(client, event("evt_1", "checkout.session.completed", sid))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]  # retrying cannot help
    stored = session.scalar(select(WebhookEvent))
    assert "cannot use" in stored.error and stored.processed_at is not None
    assert session.get(Invoice, 1).status == "open" and session.scalar(select(Payment)) is None


def test_a_session_other_than_the_one_asked_for_is_not_trusted(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    stripe_on.sessions["cs_other"] = {**stripe_on.sessions[sid]}  # Stripe answers for cs_other with sid
    assert deliver(client, event("evt_1", "checkout.session.completed", "cs_other")).status_code == 200
    assert "not the session asked for" in session.scalar(select(WebhookEvent)).error
    assert session.scalar(select(Payment)) is None


@pytest.mark.parametrize("case", ["client_reference_id 2^63", "amount_total 2^63", "NUL in currency"])
def test_the_return_page_shows_a_message_for_an_untrusted_session(client, customer, stripe_on, session, case):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    stripe_on.tamper(sid, **UNTRUSTED[case])
    response = client.get(f"/payments/return?invoice_id=1&session_id={sid}", follow_redirects=True)
    assert response.status_code == 200
    assert "We could not confirm the payment yet" in response.get_data(as_text=True)
    assert session.get(Invoice, 1).status == "open" and session.scalar(select(Payment)) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "javascript:alert(1)"},
        {"url": "https://x.test/\r\nSet-Cookie: a=b"},
        {"url": None},
        {"client_reference_id": str(2**63)},
    ],
)
def test_pay_refuses_a_created_session_it_cannot_trust(client, customer, stripe_on, session, fields):
    stripe_on.new_session_fields = fields
    response = pay(client)
    assert response.status_code == 303 and response.location == "/invoices/1"
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "The payment could not be started" in page
    assert session.get(Invoice, 1).checkout_ref is None
