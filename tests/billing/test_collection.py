"""Automatic collection (portal/billing/collection.py): which invoices are charged when,
what an outcome does, the retry schedule, and what the customer is told."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.billing import collection
from portal.billing.collection import CardDetails, ChargeOutcome
from portal.billing.invoices import record_manual_payment
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, Notification, Payment, PaymentAttempt, Subscription
from tests.conftest import utc

VISA = CardDetails("demo", "pm_demo_ok_1", "visa", "4242", 12, 2030)
ISSUED = utc(2024, 1, 10, 9)


@pytest.fixture()
def customer(session, make_user, settings):
    user = make_user(email="ada@example.com")
    subscribe(session, user, find_plan(session, "pro"), ISSUED, settings)
    session.commit()
    return user


@pytest.fixture()
def with_card(session, customer):
    collection.save_card(session, customer.id, VISA, ISSUED)
    session.commit()
    return customer


def charge(session, now, status, code="", settings=None, force=False):
    """One whole attempt as the service makes it: record, (call), record the outcome."""
    attempt = collection.begin_attempt(session, 1, now, force=force)
    if attempt is None:
        return None
    session.commit()
    outcome = ChargeOutcome(status, "demo", f"demo_ch_{attempt.idempotency_key}", code)
    collection.record_outcome(session, attempt.id, outcome, now, settings or BillingSettings())
    session.commit()
    return attempt


def test_saving_a_card_turns_on_automatic_collection_and_removing_it_turns_it_off(session, customer):
    sub = session.get(Subscription, 1)
    assert sub.collection_method == "send_invoice"
    pm = collection.save_card(session, customer.id, VISA, ISSUED)
    assert (sub.collection_method, pm.is_default, pm.label) == ("charge_automatically", True, "Visa •••• 4242")
    again = collection.save_card(session, customer.id, VISA, ISSUED)  # the webhook after the return page
    assert again.id == pm.id
    assert collection.remove_card(session, customer.id, pm.id, ISSUED) is pm
    assert sub.collection_method == "send_invoice" and collection.default_card(session, customer.id) is None
    assert collection.remove_card(session, customer.id, pm.id, ISSUED) is None  # already gone


@pytest.mark.parametrize(
    "setup, now, due",
    [
        ("no card", ISSUED, []),
        ("card", ISSUED, [1]),
        ("card, paid by hand", ISSUED, []),
        ("card, collection switched off", ISSUED, []),
        ("card, attempt in flight", ISSUED, []),
        ("card, failed", utc(2024, 1, 10, 23), []),
        ("card, failed", utc(2024, 1, 11, 0), [1]),  # the first retry's day has come
        ("card, succeeded", utc(2024, 2, 1), []),
    ],
)
def test_which_invoices_are_due_for_a_charge(session, customer, settings, make_user, setup, now, due):
    if "card" in setup and setup != "no card":
        collection.save_card(session, customer.id, VISA, ISSUED)
    if "paid by hand" in setup:
        staff = make_user(email="staff@example.com", is_staff=True)
        record_manual_payment(session, session.get(Invoice, 1), "wire", staff.id, ISSUED, settings)
    if "switched off" in setup:
        session.get(Subscription, 1).collection_method = "send_invoice"
    if "in flight" in setup:
        collection.begin_attempt(session, 1, ISSUED)
    if "failed" in setup:
        charge(session, ISSUED, "failed", "card_declined")
    if "succeeded" in setup:
        charge(session, ISSUED, "succeeded")
    session.commit()
    assert collection.due_invoice_ids(session, now) == due


@pytest.mark.parametrize(
    "retry_days, failures_at, next_days",
    [
        # day of each failure (days after issue) -> the retry day recorded on that failure
        ((1, 3, 5, 7), [0], [1]),
        ((1, 3, 5, 7), [0, 1, 3, 5, 7], [1, 3, 5, 7, None]),
        # the runs stopped after day 1: the missed retries still come, one a day
        ((1, 3, 5, 7), [0, 1, 14, 15, 16], [1, 3, 15, 16, None]),
        ((2,), [0, 2], [2, None]),
        ((), [0], [None]),
    ],
)
def test_the_retry_schedule_counts_from_the_first_failure(session, with_card, retry_days, failures_at, next_days):
    settings = BillingSettings(retry_days=retry_days)
    got = []
    for day in failures_at:
        now = utc(2024, 1, 10 + day, 9)
        attempt = charge(session, now, "failed", "insufficient_funds", settings)
        got.append(attempt.next_attempt_at and (attempt.next_attempt_at.date() - ISSUED.date()).days)
    assert got == next_days
    sub = session.get(Subscription, 1)
    assert sub.status == ("past_due" if next_days[-1] is None else "active")


@pytest.mark.parametrize(
    "status, code, reason, notice",
    [
        ("failed", "card_declined", "your bank declined the card", "charge_failed"),
        ("failed", "insufficient_funds", "the card has insufficient funds", "charge_failed"),
        ("failed", "something_new", "the card could not be charged", "charge_failed"),
        ("requires_action", "", "your bank asks you to confirm this payment", "action_required"),
    ],
)
def test_a_failed_charge_is_told_in_plain_words_with_its_retry_date(session, with_card, status, code, reason, notice):
    charge(session, ISSUED, status, code)
    invoice = session.get(Invoice, 1)
    told = collection.collection_status(session, invoice, ISSUED)
    assert (told.state, told.card, told.on, told.reason) == (status, "Visa •••• 4242", utc(2024, 1, 11).date(), reason)
    [note] = session.scalars(select(Notification).where(Notification.kind == notice)).all()
    assert (note.invoice_id, note.step) == (1, 1)
    assert invoice.status == "open"


def test_a_succeeded_charge_pays_the_invoice_once_however_often_it_is_reported(session, with_card, settings):
    attempt = charge(session, ISSUED, "succeeded")
    repeat = ChargeOutcome("succeeded", "demo", f"demo_ch_{attempt.idempotency_key}")
    collection.record_outcome(session, attempt.id, repeat, ISSUED, settings)
    collection.record_outcome(
        session, attempt.id, ChargeOutcome("failed", "demo", "", "card_declined"), ISSUED, settings
    )
    session.commit()
    assert session.get(Invoice, 1).status == "paid"
    assert session.get(PaymentAttempt, attempt.id).status == "succeeded"
    assert len(session.scalars(select(Payment)).all()) == 1
    assert collection.collection_status(session, session.get(Invoice, 1), ISSUED).state == "paid"


def test_a_charge_succeeding_after_a_manual_payment_is_flagged_for_refund(session, with_card, make_user, settings):
    attempt = collection.begin_attempt(session, 1, ISSUED)
    session.commit()
    staff = make_user(email="staff@example.com", is_staff=True)
    record_manual_payment(session, session.get(Invoice, 1), "wire", staff.id, ISSUED, settings)
    collection.record_outcome(session, attempt.id, ChargeOutcome("succeeded", "demo", "demo_ch_x"), ISSUED, settings)
    session.commit()
    card_payment = session.scalar(select(Payment).where(Payment.provider == "demo"))
    assert card_payment.flag == "invoice was already paid: refund the duplicate"
    assert session.get(Invoice, 1).status == "paid"


def test_a_scheduled_charge_is_announced_with_the_card_and_day(session, with_card):
    told = collection.collection_status(session, session.get(Invoice, 1), ISSUED)
    assert (told.state, told.card, told.on) == ("scheduled", "Visa •••• 4242", ISSUED.date())


def test_a_new_card_retries_failed_invoices_at_once(session, with_card):
    charge(session, ISSUED, "failed", "card_declined")
    assert collection.due_invoice_ids(session, utc(2024, 1, 10, 12)) == []
    collection.save_card(session, with_card.id, CardDetails("demo", "pm_demo_ok_2", "visa", "4242", 1, 2031), ISSUED)
    assert collection.retry_now_ids(session, with_card.id) == [1]
    attempt = charge(session, utc(2024, 1, 10, 12), "succeeded", force=True)
    assert attempt.attempt == 2 and session.get(Invoice, 1).status == "paid"


def test_charge_now_clicked_twice_does_not_try_the_same_card_again_at_once(session, with_card):
    """Staff's "Charge now" pressed twice (or ten times at once): the card that was just
    declined is not charged again within the minute; a new card still is, at once."""
    charge(session, ISSUED, "failed", "card_declined", force=True)
    assert collection.begin_attempt(session, 1, utc(2024, 1, 10, 9, 0, 30), force=True) is None
    assert collection.begin_attempt(session, 1, utc(2024, 1, 10, 9, 2), force=True) is not None
    session.rollback()
    collection.save_card(session, with_card.id, CardDetails("demo", "pm_demo_ok_2", "visa", "4242", 1, 2031), ISSUED)
    assert collection.begin_attempt(session, 1, utc(2024, 1, 10, 9, 0, 30), force=True) is not None


def test_a_crashed_attempt_is_resumed_with_its_own_key_not_a_new_one(session, with_card):
    attempt = collection.begin_attempt(session, 1, ISSUED)
    session.commit()  # then the process dies before the provider answers
    assert collection.begin_attempt(session, 1, utc(2024, 1, 11), force=True) is None
    assert collection.stale_attempts(session, ISSUED) == []
    assert collection.stale_attempts(session, utc(2024, 1, 10, 9, 30)) == [attempt.id]


@pytest.mark.parametrize("cancel_after, canceled", [(0, False), (3, True)])
def test_after_the_last_retry_the_subscription_is_past_due_then_ends_if_configured(
    session, with_card, cancel_after, canceled
):
    settings = BillingSettings(retry_days=(), cancel_after_days=cancel_after)
    charge(session, ISSUED, "failed", "card_declined", settings)
    assert session.get(Subscription, 1).status == "past_due"
    assert collection.end_unpaid(session, utc(2024, 1, 12, 9), settings) == 0
    assert collection.end_unpaid(session, utc(2024, 1, 13, 9), settings) == int(canceled)
    session.commit()
    session.expire_all()
    assert session.get(Subscription, 1).status == ("canceled" if canceled else "past_due")


@pytest.mark.parametrize(
    "exp, today, notices",
    [((2, 2024), utc(2024, 1, 5), 1), ((3, 2024), utc(2024, 1, 5), 0), ((1, 2025), utc(2024, 12, 1), 1)],
)
def test_a_card_expiring_next_month_gets_one_notice(session, customer, exp, today, notices):
    collection.save_card(session, customer.id, CardDetails("demo", "pm_x", "visa", "4242", exp[0], exp[1]), ISSUED)
    assert collection.queue_card_expiry_notices(session, today) == notices
    assert collection.queue_card_expiry_notices(session, today) == 0  # once


def test_recovery_rate_over_thirty_days(session, with_card):
    charge(session, ISSUED, "failed", "card_declined")
    assert collection.recovery(session, ISSUED) == collection.ChargeFigures(1, 0, 0.0)
    charge(session, utc(2024, 1, 11, 9), "succeeded")
    assert collection.recovery(session, utc(2024, 1, 11, 9)) == collection.ChargeFigures(1, 1, 1.0)


def test_paying_another_invoice_does_not_settle_a_subscription_whose_charge_ran_out(session, with_card, settings):
    from portal.billing.checkouts import PAID, Checkout
    from portal.billing.invoices import fulfil
    from portal.models import Invoice as Inv

    no_retries = BillingSettings(retry_days=())
    charge(session, ISSUED, "failed", "card_declined", no_retries)
    assert session.get(Subscription, 1).status == "past_due"
    other = Inv(
        user_id=with_card.id,
        subscription_id=1,
        kind="proration",
        description="upgrade",
        period_start=ISSUED.date(),
        period_end=ISSUED.date(),
        total=100,
        currency="USD",
        issued_at=ISSUED,
        due_date=ISSUED.date(),
    )
    session.add(other)
    session.flush()
    fulfil(session, Checkout("demo", "demo_other", other.id, 100, "USD", PAID), ISSUED, settings)
    session.expire_all()
    assert session.get(Subscription, 1).status == "past_due"  # invoice 1 is still unpaid
    fulfil(session, Checkout("demo", "demo_one", 1, 2900, "USD", PAID), ISSUED, settings)
    session.expire_all()
    assert session.get(Subscription, 1).status == "active"


def test_failed_charges_past_due_and_the_end_are_reported_to_webhook_receivers(session, with_card, listener):
    """invoice.payment_failed for each failed attempt (with its retry date), subscription.past_due
    after the last retry, subscription.canceled when the dunning rule ends it."""
    import json

    from portal.models import OutboundEvent

    settings = BillingSettings(retry_days=(1,), cancel_after_days=2)
    charge(session, ISSUED, "failed", "card_declined", settings)
    charge(session, utc(2024, 1, 11, 9), "failed", "insufficient_funds", settings)
    collection.end_unpaid(session, utc(2024, 1, 13, 9), settings)
    session.commit()
    events = [(e.type, json.loads(e.data)) for e in session.scalars(select(OutboundEvent).order_by(OutboundEvent.id))]
    reported = [(t, d.get("failure_code"), d.get("next_attempt_at"), d.get("status")) for t, d in events]
    assert reported[-4:] == [
        ("invoice.payment_failed", "card_declined", "2024-01-11T00:00:00+00:00", "open"),
        ("invoice.payment_failed", "insufficient_funds", None, "open"),
        ("subscription.past_due", None, None, "past_due"),
        ("subscription.canceled", None, None, "canceled"),
    ]


# -- a chunk at a time (the payments queue) ---------------------------------------------


def _events(session):
    import json

    from portal.models import OutboundEvent

    return [
        (e.type, e.key, json.loads(e.data)) for e in session.scalars(select(OutboundEvent).order_by(OutboundEvent.id))
    ]


def test_a_chunk_is_recorded_at_once_then_paid_like_one_charge_at_a_time(
    session, with_card, make_user, settings, listener
):
    other = make_user(email="bob@example.com")
    subscribe(session, other, find_plan(session, "pro"), ISSUED, settings)
    collection.save_card(session, other.id, CardDetails("demo", "pm_demo_ok_9", "visa", "4242", 1, 2031), ISSUED)
    session.commit()
    ids = sorted(session.scalars(select(Invoice.id)))
    charges = collection.begin_attempts(session, [*ids, *ids, 999_999], ISSUED)  # repeats and unknown ids
    session.commit()
    assert [(c.invoice_id, c.key, c.amount, c.card_ref) for c in charges] == [
        (ids[0], f"invoice-{ids[0]}-attempt-1", 2900, "pm_demo_ok_1"),
        (ids[1], f"invoice-{ids[1]}-attempt-1", 2900, "pm_demo_ok_9"),
    ]
    before = len(_events(session))
    outcomes = [(c.attempt_id, ChargeOutcome("succeeded", "demo", f"demo_ch_{c.key}")) for c in charges]
    collection.record_outcomes(session, outcomes, ISSUED, settings)
    session.commit()
    assert {i.status for i in session.scalars(select(Invoice))} == {"paid"}
    assert {a.status for a in session.scalars(select(PaymentAttempt))} == {"succeeded"}
    payments = session.scalars(select(Payment).order_by(Payment.invoice_id)).all()
    assert [(p.invoice_id, p.provider_ref, p.status, p.flag) for p in payments] == [
        (c.invoice_id, f"demo_ch_{c.key}", "succeeded", None) for c in charges
    ]
    receipts = session.scalars(select(Notification).where(Notification.kind == "receipt")).all()
    assert sorted(n.invoice_id for n in receipts) == ids
    paid = [(t, k, d["status"], d["total"]) for t, k, d in _events(session)[before:]]
    assert paid == [("invoice.paid", f"invoice.paid:{i}", "paid", 2900) for i in ids]
    assert collection.collection_status(session, session.get(Invoice, ids[0]), ISSUED).state == "paid"


def test_a_crash_between_recording_a_chunk_and_calling_never_charges_twice(session, with_card, settings):
    [first] = collection.begin_attempts(session, [1], ISSUED)
    session.commit()  # then the process dies before the provider is called
    # The job run again, the day's pass, staff's "Charge now": nothing new is recorded.
    assert collection.begin_attempts(session, [1], utc(2024, 1, 10, 9, 5)) == []
    assert collection.due_invoice_ids(session, utc(2024, 1, 11)) == []
    assert collection.begin_attempt(session, 1, utc(2024, 1, 11), force=True) is None
    # Resumed later with the attempt's own key: the provider answers it with the first charge.
    assert collection.stale_attempts(session, utc(2024, 1, 10, 9, 30)) == [first.attempt_id]
    outcome = ChargeOutcome("succeeded", "demo", f"demo_ch_{first.key}")
    collection.record_outcomes(session, [(first.attempt_id, outcome)], utc(2024, 1, 10, 9, 30), settings)
    session.commit()
    assert [a.idempotency_key for a in session.scalars(select(PaymentAttempt))] == ["invoice-1-attempt-1"]
    assert len(session.scalars(select(Payment)).all()) == 1


def test_a_duplicate_webhook_or_job_after_a_chunk_succeeded_is_harmless(session, with_card, settings):
    [c] = collection.begin_attempts(session, [1], ISSUED)
    session.commit()
    outcome = ChargeOutcome("succeeded", "demo", f"demo_ch_{c.key}")
    collection.record_outcomes(session, [(c.attempt_id, outcome)], ISSUED, settings)
    session.commit()
    events = len(_events(session))
    collection.record_outcome(session, c.attempt_id, outcome, utc(2024, 1, 10, 10), settings)  # the webhook
    collection.record_outcomes(session, [(c.attempt_id, outcome)], utc(2024, 1, 10, 11), settings)  # a requeued job
    collection.record_outcome(
        session, c.attempt_id, ChargeOutcome("failed", "demo", "", "card_declined"), ISSUED, settings
    )  # a late, reordered failure
    session.commit()
    assert [(p.provider_ref, p.flag) for p in session.scalars(select(Payment))] == [(f"demo_ch_{c.key}", None)]
    attempt = session.get(PaymentAttempt, c.attempt_id)
    assert (attempt.status, attempt.finished_at) == ("succeeded", ISSUED)
    assert len(_events(session)) == events
    assert len(session.scalars(select(Notification).where(Notification.kind == "receipt")).all()) == 1


def test_a_chunk_charge_succeeding_after_a_manual_payment_is_flagged_for_refund(
    session, with_card, make_user, settings
):
    [c] = collection.begin_attempts(session, [1], ISSUED)
    session.commit()
    staff = make_user(email="staff@example.com", is_staff=True)
    record_manual_payment(session, session.get(Invoice, 1), "wire", staff.id, ISSUED, settings)
    session.commit()
    outcome = ChargeOutcome("succeeded", "demo", "demo_ch_x")
    collection.record_outcomes(session, [(c.attempt_id, outcome)], ISSUED, settings)
    session.commit()
    card_payment = session.scalar(select(Payment).where(Payment.provider == "demo"))
    assert card_payment.flag == "invoice was already paid: refund the duplicate"
    assert session.get(Invoice, 1).status == "paid"
    assert len(session.scalars(select(Payment)).all()) == 2


def test_a_chunk_failure_is_retried_on_its_day_with_the_next_key(session, with_card, settings):
    [c] = collection.begin_attempts(session, [1], ISSUED)
    session.commit()
    failed = ChargeOutcome("failed", "demo", "", "insufficient_funds")
    collection.record_outcomes(session, [(c.attempt_id, failed)], ISSUED, settings)
    session.commit()
    attempt = session.get(PaymentAttempt, c.attempt_id)
    assert (attempt.status, attempt.next_attempt_at) == ("failed", utc(2024, 1, 11))
    assert session.scalar(select(Notification).where(Notification.kind == "charge_failed")).step == 1
    assert collection.begin_attempts(session, [1], utc(2024, 1, 10, 23)) == []
    [again] = collection.begin_attempts(session, [1], utc(2024, 1, 11, 0, 30))
    assert again.key == "invoice-1-attempt-2"
