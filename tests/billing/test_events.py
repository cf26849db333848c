"""Outbound events: recorded with the change they report, set-based in the billing run,
fanned out to the endpoints that subscribe; the delivery rules (order, retries, disabling)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select

from portal.billing import events, webhooks
from portal.billing.daily import mark_overdue_and_past_due
from portal.billing.invoices import void
from portal.billing.invoicing import run_billing
from portal.billing.subscriptions import cancel, change_plan, find_plan, subscribe
from portal.models import (
    DLV_FAILED,
    DLV_PENDING,
    DLV_SUCCEEDED,
    NOTE_STAFF_ALERT,
    Invoice,
    Notification,
    OutboundEvent,
    WebhookAttempt,
    WebhookDelivery,
)
from tests.conftest import utc

START = utc(2024, 1, 31, 8)


def types(session) -> list[str]:
    return list(session.scalars(select(OutboundEvent.type).order_by(OutboundEvent.id)))


def data_of(session, event_type: str) -> list[dict]:
    rows = session.scalars(
        select(OutboundEvent.data).where(OutboundEvent.type == event_type).order_by(OutboundEvent.id)
    )
    return [json.loads(r) for r in rows]


def endpoint(session, event_types=events.EVENT_TYPES, url="http://127.0.0.1:9/hook"):
    return webhooks.create_endpoint(session, url, event_types, "", START, actor_id=None)


def test_subscribing_records_created_and_the_first_invoice(session, make_user, settings, listener):
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "pro"), START, settings)
    session.commit()
    assert types(session) == ["subscription.created", "invoice.issued"]
    created = data_of(session, "subscription.created")[0]
    assert created["id"] == sub.id and created["customer_id"] == user.id and created["plan"] == "pro"
    issued = data_of(session, "invoice.issued")[0]
    invoice = session.scalars(select(Invoice)).one()
    # The set-based path writes what the Python one would.
    assert issued == json.loads(events.to_json(events.invoice_data(invoice)))
    assert issued["number"] == invoice.number and issued["total"] == 2900 and issued["status"] == "open"


def test_the_billing_run_records_one_event_per_invoice_and_a_rerun_none(session, make_user, settings, listener):
    p = find_plan(session, "basic")
    for _ in range(5):
        subscribe(session, make_user(), p, START, settings)
    session.commit()
    before = len(data_of(session, "invoice.issued"))
    run_billing(session, utc(2024, 4, 1), settings, session.commit)  # Feb, Mar (and catch-up)
    issued = data_of(session, "invoice.issued")
    invoices = session.scalar(select(func.count()).select_from(Invoice))
    assert len(issued) == invoices == before + 5 * 2
    assert len({e["id"] for e in issued}) == len(issued)
    run_billing(session, utc(2024, 4, 1), settings, session.commit)
    assert len(data_of(session, "invoice.issued")) == len(issued)


def test_a_rolled_back_change_leaves_no_event(session, make_user, settings, listener):
    user = make_user()
    subscribe(session, user, find_plan(session, "pro"), START, settings)
    session.rollback()
    assert types(session) == []


def test_overdue_past_due_paid_void_cancel_and_plan_change_are_recorded(session, make_user, settings, listener):
    a, b = make_user(), make_user()
    sub_a = subscribe(session, a, find_plan(session, "basic"), START, settings)
    subscribe(session, b, find_plan(session, "basic"), START, settings)
    session.commit()
    later = utc(2024, 2, 25, 9)  # due Feb 14: overdue, and long overdue (past_due after 7 days)
    mark_overdue_and_past_due(session, later, settings)
    mark_overdue_and_past_due(session, later, settings)  # the same day again: nothing twice
    session.commit()
    assert len(data_of(session, "invoice.overdue")) == 2
    past_due = data_of(session, "subscription.past_due")
    assert len(past_due) == 2 and past_due[0]["status"] == "past_due" and past_due[0]["cancel_at_period_end"] is False
    inv_b = session.scalars(select(Invoice).where(Invoice.user_id == b.id)).one()
    assert void(session, inv_b, later, settings)
    session.commit()
    assert data_of(session, "invoice.voided")[0]["id"] == inv_b.id
    assert data_of(session, "subscription.updated")[-1]["status"] == "active"  # settled
    change_plan(session, sub_a, find_plan(session, "pro"), later, settings)
    cancel(session, sub_a, later)
    session.commit()
    updates = data_of(session, "subscription.updated")
    assert updates[-2]["plan"] == "pro" and updates[-1]["cancel_at_period_end"] is True
    assert any(e["kind"] == "proration" for e in data_of(session, "invoice.issued"))
    # The run ends it at period end: subscription.canceled, once.
    run_billing(session, utc(2024, 3, 31), settings, session.commit)
    run_billing(session, utc(2024, 3, 31), settings, session.commit)
    canceled = data_of(session, "subscription.canceled")
    assert [c["id"] for c in canceled] == [sub_a.id] and canceled[0]["status"] == "canceled"


def test_emit_refuses_an_unknown_type(session):
    with pytest.raises(ValueError):
        events.emit(session, "invoice.exploded", {}, START)


def test_dispatch_fans_out_to_enabled_subscribed_endpoints_only(session, make_user, settings):
    all_types = endpoint(session)
    invoices_only = endpoint(session, ["invoice.issued"])
    off = endpoint(session)
    webhooks.disable(session, off, "by hand", START, actor_id=None)
    session.commit()
    subscribe(session, make_user(), find_plan(session, "pro"), START, settings)
    session.commit()
    assert events.dispatch(session, START) == 2
    assert events.dispatch(session, START) == 0
    session.commit()
    got = session.execute(
        select(WebhookDelivery.endpoint_id, OutboundEvent.type).join(OutboundEvent).order_by(WebhookDelivery.id)
    ).all()
    assert got == [
        (all_types.id, "subscription.created"),
        (all_types.id, "invoice.issued"),
        (invoices_only.id, "invoice.issued"),
    ]


def test_payload_is_the_standard_webhooks_shape(session, listener):
    events.emit(session, "customer.created", {"id": 7, "email": "a@example.com"}, START)
    event = session.scalars(select(OutboundEvent)).one()
    body = json.loads(events.payload(event))
    assert body == {
        "type": "customer.created",
        "timestamp": "2024-01-31T08:00:00Z",
        "data": {"email": "a@example.com", "id": 7},
    }


def test_secret_format(session):
    secret = endpoint(session).secret
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 32


def _due(session, ep, now):
    found = webhooks.claim_endpoint(session, now)
    return [] if found is None else [d.event_id for d in webhooks.due_deliveries(session, found, now)]


def test_a_failure_holds_back_the_later_deliveries_until_its_retry(session):
    ep = endpoint(session)
    for i in range(3):
        events.emit(session, "customer.created", {"id": i}, START)
    events.dispatch(session, START)
    session.commit()
    first, second, third = webhooks.due_deliveries(session, ep, START)
    webhooks.record(session, ep, first, webhooks.Outcome(503, "down"), START)
    session.commit()
    assert first.next_attempt_at == START + dt.timedelta(seconds=5) and ep.retry_at == first.next_attempt_at
    assert _due(session, ep, START + dt.timedelta(seconds=4)) == []  # nothing jumps the queue
    session.rollback()
    assert _due(session, ep, START + dt.timedelta(seconds=5)) == [first.event_id, second.event_id, third.event_id]
    session.rollback()


def test_retries_follow_the_schedule_then_give_up_and_the_endpoint_is_disabled(session, make_user):
    staff = make_user(email="ops@example.com", is_staff=True)
    ep = endpoint(session)
    events.emit(session, "customer.created", {"id": 1}, START)
    events.emit(session, "customer.created", {"id": 2}, START)
    events.dispatch(session, START)
    session.commit()
    now = START
    first = webhooks.due_deliveries(session, ep, now)[0]
    waits = []
    while first.status == DLV_PENDING:
        webhooks.record(session, ep, first, webhooks.Outcome(None, error="ConnectionError: refused"), now)
        if first.next_attempt_at:
            waits.append(first.next_attempt_at - now)
            now = first.next_attempt_at
    assert tuple(waits) == webhooks.RETRY_SCHEDULE
    assert first.status == DLV_FAILED and first.attempts == len(webhooks.RETRY_SCHEDULE) + 1
    assert dt.timedelta(days=2) < now - START < webhooks.DISABLE_AFTER and ep.enabled
    # The next delivery goes at once; still failing three days on, the endpoint is disabled.
    second = webhooks.due_deliveries(session, ep, now)[0]
    webhooks.record(session, ep, second, webhooks.Outcome(500), now)
    now = START + webhooks.DISABLE_AFTER
    webhooks.record(session, ep, second, webhooks.Outcome(500), now)
    session.commit()
    assert not ep.enabled and "failed for 3 days" in ep.disabled_reason
    alert = session.scalars(select(Notification).where(Notification.kind == NOTE_STAFF_ALERT)).one()
    assert alert.user_id == staff.id and ep.url in alert.subject
    assert session.scalar(select(func.count()).select_from(WebhookAttempt)) == len(webhooks.RETRY_SCHEDULE) + 3
    assert webhooks.claim_endpoint(session, now + dt.timedelta(days=1)) is None  # disabled: nothing sent
    # Enabled again, what waited goes out, and one success clears the failure clock.
    webhooks.enable(session, ep, now, actor_id=staff.id)
    claimed = webhooks.claim_endpoint(session, now)
    assert claimed is not None and claimed.id == ep.id
    webhooks.record(session, ep, webhooks.due_deliveries(session, ep, now)[0], webhooks.Outcome(204), now)
    session.commit()
    assert second.status == DLV_SUCCEEDED and ep.failing_since is None


def test_resend_sends_a_delivered_event_again(session, make_user):
    staff = make_user(is_staff=True)
    ep = endpoint(session)
    events.emit(session, "customer.created", {"id": 1}, START)
    events.dispatch(session, START)
    delivery = webhooks.due_deliveries(session, ep, START)[0]
    webhooks.record(session, ep, delivery, webhooks.Outcome(200, "ok"), START)
    session.commit()
    assert webhooks.due_deliveries(session, ep, START) == []
    webhooks.resend(session, delivery, START, actor_id=staff.id)
    session.commit()
    assert [d.id for d in webhooks.due_deliveries(session, ep, START)] == [delivery.id]


def test_unknown_or_no_event_types_are_refused(session):
    with pytest.raises(Exception, match="Unknown event"):
        endpoint(session, ["invoice.exploded"])
    with pytest.raises(Exception, match="at least one"):
        endpoint(session, [])


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_workers_never_claim_the_same_endpoint(session, new_session):
    """PostgreSQL: the claim is FOR NO KEY UPDATE SKIP LOCKED, so a second worker takes
    another endpoint (or none) while the first sends; no delivery is sent twice."""
    eps = [endpoint(session) for _ in range(2)]
    for i in range(10):
        events.emit(session, "customer.created", {"id": i}, START)
    events.dispatch(session, START)
    session.commit()
    claimed: list[list[int]] = []
    barrier = threading.Barrier(3)

    def worker():
        with new_session() as s:
            mine = []
            ep = webhooks.claim_endpoint(s, START)
            barrier.wait()  # all claims made while each holds its lock
            if ep is not None:
                for d in webhooks.due_deliveries(s, ep, START):
                    webhooks.record(s, ep, d, webhooks.Outcome(200), START)
                    mine.append(d.id)
            barrier.wait()
            s.commit()
            claimed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [d for mine in claimed for d in mine]
    assert sorted(len(m) for m in claimed) == [0, 10, 10]
    assert len(sent) == len(set(sent)) == 20
    assert {ep.id for ep in eps} == set(session.scalars(select(WebhookDelivery.endpoint_id).distinct()))
    assert session.scalar(select(func.count()).select_from(WebhookAttempt)) == 20


def test_pausing_resuming_and_undoing_a_cancellation_each_report_an_update(session, make_user, settings, listener):
    """A receiver learns of every change a customer or a server key makes to a subscription."""
    from portal.billing.subscriptions import pause, resume, unpause

    sub = subscribe(session, make_user(), find_plan(session, "pro"), START, settings)
    later = START + dt.timedelta(days=3)
    pause(session, sub, later)
    unpause(session, sub, later)
    cancel(session, sub, later)
    resume(session, sub, later)
    session.commit()
    updates = data_of(session, "subscription.updated")
    assert [(u["paused"], u["cancel_at_period_end"]) for u in updates] == [
        (True, False),
        (False, False),
        (False, True),
        (False, False),
    ]


def test_an_event_nobody_subscribes_to_is_not_recorded(session, make_user, settings):
    """Nobody could ever receive it: no row, in the single and in the set-based paths alike."""
    subscribe(session, make_user(), find_plan(session, "pro"), START, settings)
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert types(session) == []
    endpoint(session, ["invoice.issued"])
    session.commit()
    subscribe(session, make_user(), find_plan(session, "pro"), START, settings)
    run_billing(session, utc(2024, 4, 1), settings, session.commit)
    assert types(session) == ["invoice.issued"] * 4  # a first invoice, then three renewals
