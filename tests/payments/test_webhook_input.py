"""Issue 12, items 14 and 15: the Stripe webhook with malformed events and late failures.

The real stripe SDK verifies and parses the events; sessions come from the local fake
Stripe (tests/payments/fake_stripe.py), so the re-fetched state is Stripe's wire format.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from sqlalchemy import func, select

from portal.models import Invoice, Payment, WebhookEvent
from tests.payments.fake_stripe import event
from tests.payments.test_stripe import SECRET, deliver, fake_stripe, started_session, stripe_on  # noqa: F401


def signed_raw(body: bytes, secret: str = SECRET) -> dict:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}"}


def without(payload: dict, *path: str) -> dict:
    inner = payload
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return payload


MALFORMED = {
    "no id": lambda sid: without(event("evt_1", "checkout.session.completed", sid), "id"),
    "empty id": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "id": ""},
    "numeric id": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "id": 12},
    "NUL in id": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "id": "evt\x001"},
    "no type": lambda sid: without(event("evt_1", "checkout.session.completed", sid), "type"),
    "no object id": lambda sid: without(event("evt_1", "checkout.session.completed", sid), "data", "object", "id"),
    "no object": lambda sid: without(event("evt_1", "checkout.session.completed", sid), "data", "object"),
    "no data": lambda sid: without(event("evt_1", "checkout.session.completed", sid), "data"),
    "object is a list": lambda sid: {**event("evt_1", "checkout.session.completed", sid), "data": {"object": [sid]}},
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_signed_event_without_its_ids_is_a_400_and_changes_nothing(client, customer, stripe_on, session, case):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    response = deliver(client, MALFORMED[case](sid))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"]["code"] == "malformed_event" and response.json["error"]["message"]
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert session.get(Invoice, 1).status == "open" and session.scalar(select(Payment)) is None


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"event"',
        b"{not json",
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
@pytest.mark.parametrize("signed", [True, False])
def test_a_body_that_is_not_a_json_event_is_a_400(client, customer, stripe_on, session, body, signed):
    headers = signed_raw(body) if signed else {"Stripe-Signature": "t=1,v1=00"}
    response = client.post("/stripe/webhook", data=body, headers=headers, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_an_event_of_another_type_needs_no_object_id(client, customer, stripe_on, session):
    payload = {"id": "evt_9", "object": "event", "type": "customer.created", "data": {"object": {}}}
    assert deliver(client, payload).status_code == 200
    assert session.scalar(select(WebhookEvent)).processed_at is not None


def test_async_payment_failed_for_a_session_stripe_says_is_paid_records_the_payment(
    client, customer, stripe_on, session
):
    """Item 15: the re-fetched session decides, not the event's type."""
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, paid=True)
    assert deliver(client, event("evt_late_fail", "checkout.session.async_payment_failed", sid)).status_code == 200
    invoice = session.get(Invoice, 1)
    [payment] = invoice.payments
    assert payment.status == "succeeded" and invoice.status == "paid"
    # The completed event that follows is a no-op: still one payment, still paid.
    assert deliver(client, event("evt_done", "checkout.session.completed", sid)).status_code == 200
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Payment)) == 1
    assert session.get(Invoice, 1).status == "paid"


def test_async_payment_failed_while_stripe_still_waits_marks_the_payment_failed(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, paid=False)  # complete, money not in: what a failed async payment looks like
    assert deliver(client, event("evt_fail", "checkout.session.async_payment_failed", sid)).status_code == 200
    assert session.scalar(select(Payment)).status == "failed"
    assert session.get(Invoice, 1).status == "open"


def test_async_payment_failed_for_an_open_session_records_nothing_failed(client, customer, stripe_on, session):
    """A forged-order or stale failure for a session still open at Stripe fails nothing."""
    sid = started_session(client, stripe_on)
    assert deliver(client, event("evt_odd", "checkout.session.async_payment_failed", sid)).status_code == 200
    assert session.scalar(select(Payment)) is None and session.get(Invoice, 1).status == "open"
