"""The payments inbox (portal/payments/inbox.py): each webhook event stored once."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, insert, select

from portal.extensions import db
from portal.models import Payment, WebhookEvent
from portal.payments import inbox
from tests.conftest import utc

PAYLOAD = {"id": "evt_1", "type": "checkout.session.completed"}


def stored(session) -> list[tuple]:
    return session.execute(
        select(WebhookEvent.provider_event_id, WebhookEvent.processed_at, WebhookEvent.error).order_by(WebhookEvent.id)
    ).all()


def test_a_new_event_is_stored_and_a_processed_one_is_a_duplicate(session):
    record = inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 10))
    assert record is not None and '"evt_1"' in record.payload and record.received_at == utc(2024, 1, 10)
    inbox.mark_processed(session, record, utc(2024, 1, 10, 0, 1))
    session.commit()
    assert inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 11)) is None
    assert stored(session) == [("evt_1", utc(2024, 1, 10, 0, 1), None)]


def test_an_event_that_failed_retryably_is_processed_again_then_closed(session):
    record = inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 10))
    inbox.record_error(session, record, "Stripe unreachable", final=False, now=utc(2024, 1, 10))
    session.commit()
    assert stored(session) == [("evt_1", None, "Stripe unreachable")]
    retry = inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 10, 1))
    assert retry is not None and retry.id == record.id  # the same record, not a second one
    inbox.mark_processed(session, retry, utc(2024, 1, 10, 1))
    session.commit()
    assert stored(session) == [("evt_1", utc(2024, 1, 10, 1), None)]  # the error is cleared


def test_a_final_error_closes_the_event(session):
    record = inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 10))
    inbox.record_error(session, record, "No such checkout session", final=True, now=utc(2024, 1, 10))
    session.commit()
    assert stored(session) == [("evt_1", utc(2024, 1, 10), "No such checkout session")]
    assert inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 11)) is None


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_delivery_that_loses_the_race_to_store_the_event_is_a_duplicate(session, customer):
    """The other delivery stores the event between this one's look-up and its insert: the
    unique id refuses the insert, and the savepoint undoes only that insert, not the
    request's earlier work."""
    session.add(
        Payment(
            invoice_id=1,
            provider="demo",
            provider_ref="earlier_work",
            amount=2900,
            currency="USD",
            status="succeeded",
            created_at=utc(2024, 1, 10),
        )
    )
    session.flush()

    def other_delivery_stores_it_first(*_):
        with db.engine.begin() as conn:  # another request's transaction, committed first
            conn.execute(
                insert(WebhookEvent).values(
                    provider_event_id="evt_1",
                    type="checkout.session.completed",
                    payload="{}",
                    received_at=utc(2024, 1, 10),
                )
            )

    event.listen(session(), "before_flush", other_delivery_stores_it_first, once=True)
    assert inbox.receive(session, "evt_1", "checkout.session.completed", PAYLOAD, utc(2024, 1, 10)) is None
    session.commit()
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 1
    assert session.scalar(select(Payment.provider_ref)) == "earlier_work"
