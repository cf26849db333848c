"""Credit notes, refunds and the credit balance, each rule as a table of
(situation, action, expected lines and totals), on a plain session."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.billing import credits
from portal.billing.checkouts import PAID, Checkout
from portal.billing.errors import BillingError
from portal.billing.invoices import fulfil
from portal.billing.invoicing import run_billing
from portal.billing.subscriptions import change_plan, find_plan, subscribe
from portal.models import (
    CN_BALANCE,
    CN_DUE,
    CN_REFUND,
    CreditEntry,
    Invoice,
    OutboundEvent,
    Plan,
    Refund,
    TaxRate,
)
from tests.conftest import utc

NOW = utc(2024, 3, 1, 9)


def _invoice(session, make_user, settings, plan="pro", percent=None, inclusive=False, paid_by=None):
    user = make_user(billing_country="FI") if percent is not None else make_user()
    if percent is not None:
        session.add(TaxRate(name="VAT", percent=Decimal(percent), country="FI", inclusive=inclusive, active=True))
        session.flush()
    sub = subscribe(session, user, find_plan(session, plan), NOW, settings)
    invoice = session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id)).one()
    if paid_by:
        fulfil(
            session,
            Checkout(paid_by, f"{paid_by}_ref_{invoice.id}", invoice.id, invoice.total, "USD", PAID),
            NOW,
            settings,
        )
    return invoice


def _custom_plan(session, price):
    plan = Plan(code=f"p{price}", name=f"P{price}", price=price, currency="USD", interval="month", trial_days=0)
    session.add(plan)
    session.flush()
    return plan.code


# (situation: plan price, tax %, paid by), action: (amount of line 1 or None = whole, outcome),
# expected: (note subtotal, note tax, note total, invoice status, amount due, balance, refund)
CREDIT_NOTES = [
    ("unpaid, whole, no tax", (2900, None, None), (None, None), (2900, 0, 2900, "paid", 0, 0, 0)),
    ("unpaid, part, no tax", (2900, None, None), (1000, None), (1000, 0, 1000, "open", 1900, 0, 0)),
    ("unpaid, part, 20 % exclusive", (2900, "20", None), (1001, None), (1001, 200, 1201, "open", 2279, 0, 0)),
    ("unpaid, half, 25.5 %", (999, "25.5", None), (333, None), (333, 85, 418, "open", 836, 0, 0)),
    ("paid, whole, to balance", (2900, "20", "demo"), (None, CN_BALANCE), (2900, 580, 3480, "paid", 0, 3480, 0)),
    ("paid, part, refunded", (2900, None, "demo"), (900, CN_REFUND), (900, 0, 900, "paid", 0, 0, 900)),
    ("paid by stripe, whole, refunded", (2900, None, "stripe"), (None, CN_REFUND), (2900, 0, 2900, "paid", 0, 0, 2900)),
    ("unpaid: outcome ignored", (2900, None, None), (500, CN_REFUND), (500, 0, 500, "open", 2400, 0, 0)),
]


@pytest.mark.parametrize("situation, given, action, expected", CREDIT_NOTES, ids=[row[0] for row in CREDIT_NOTES])
def test_credit_note_table(session, make_user, settings, situation, given, action, expected):
    price, percent, paid_by = given
    invoice = _invoice(session, make_user, settings, _custom_plan(session, price), percent, paid_by=paid_by)
    amount, outcome = action
    amounts = None if amount is None else {invoice.lines[0].id: amount}
    note = credits.issue_credit_note(
        session, invoice.id, amounts, "Service outage", outcome, NOW, settings, actor_id=None
    )
    session.refresh(invoice)
    refunded = sum(r.amount for r in session.scalars(select(Refund).where(Refund.invoice_id == invoice.id)))
    got = (
        note.subtotal_cents,
        note.tax_cents,
        note.total,
        invoice.status,
        invoice.amount_due,
        credits.balance(session, invoice.user_id, "USD"),
        refunded,
    )
    assert got == expected
    assert note.number == "CN-000001" and note.outcome == (outcome if paid_by else CN_DUE)
    assert [(line.description, line.amount) for line in note.lines] == [
        (invoice.lines[0].description, note.subtotal_cents)
    ]


def test_credit_notes_never_credit_more_tax_than_the_line_carried(session, make_user, settings):
    invoice = _invoice(session, make_user, settings, _custom_plan(session, 999), "25.5")
    line = invoice.lines[0]
    assert (line.amount, line.tax_cents) == (999, 255)
    taxes = []
    for amount in (333, 333, 333):
        note = credits.issue_credit_note(session, invoice.id, {line.id: amount}, "split", None, NOW, settings)
        taxes.append(note.tax_cents)
    assert taxes == [85, 85, 85] and sum(taxes) == line.tax_cents
    session.refresh(invoice)
    assert (invoice.status, invoice.amount_due) == ("paid", 0)
    with pytest.raises(BillingError) as refused:
        credits.issue_credit_note(session, invoice.id, None, "again", None, NOW, settings)
    assert refused.value.code == "nothing_to_credit"


def test_credit_note_numbers_are_gapless_and_their_own(session, make_user, settings):
    first = _invoice(session, make_user, settings)
    second = _invoice(session, make_user, settings)
    a = credits.issue_credit_note(session, first.id, {first.lines[0].id: 100}, "x", None, NOW, settings)
    b = credits.issue_credit_note(session, second.id, {second.lines[0].id: 100}, "y", None, NOW, settings)
    assert (a.number, b.number) == ("CN-000001", "CN-000002")
    assert (first.number, second.number) == ("INV-000001", "INV-000002")


# situation, action, expected error code
REFUSED = [
    ("no reason", dict(reason=""), "reason_required"),
    ("more than the line", dict(amount=3000), "too_much"),
    ("paid, no outcome", dict(paid_by="demo", outcome=None), "outcome_required"),
    ("paid by hand, refund asked", dict(paid_by="manual", outcome=CN_REFUND), "not_refundable"),
    ("void", dict(void=True), "void"),
]


@pytest.mark.parametrize("situation, action, code", REFUSED, ids=[row[0] for row in REFUSED])
def test_refused_credit_notes_write_nothing(session, make_user, settings, situation, action, code):
    from portal.billing.invoices import void

    invoice = _invoice(session, make_user, settings, paid_by=action.get("paid_by"))
    if action.get("void"):
        void(session, invoice, NOW, settings)
    amount = action.get("amount")
    with pytest.raises(BillingError) as refused, session.begin_nested():
        credits.issue_credit_note(
            session,
            invoice.id,
            None if amount is None else {invoice.lines[0].id: amount},
            action.get("reason", "because"),
            action.get("outcome"),
            NOW,
            settings,
        )
    assert refused.value.code == code
    assert invoice.credit_notes == [] and credits.balance(session, invoice.user_id, "USD") == 0


# situation: payment amount, earlier refunds; action: refund amount (None: the rest); expected: refunded or error
REFUNDS = [
    ("whole", 2900, [], None, 2900),
    ("partial", 2900, [], 1000, 1000),
    ("rest after a partial", 2900, [1000], None, 1900),
    ("more than paid", 2900, [], 3000, "too_much"),
    ("more than left", 2900, [2000], 1000, "too_much"),
    ("nothing left", 2900, [2900], None, "already_refunded"),
    ("zero", 2900, [], 0, "invalid_amount"),
]


@pytest.mark.parametrize("situation, paid, earlier, amount, expected", REFUNDS, ids=[row[0] for row in REFUNDS])
def test_refund_table(session, make_user, settings, situation, paid, earlier, amount, expected, listener):
    invoice = _invoice(session, make_user, settings, paid_by="demo")
    [payment] = invoice.payments
    for part in earlier:
        done = credits.start_refund(session, payment.id, part, "earlier", NOW)
        credits.record_refund_outcome(session, done.id, True, f"re_{done.id}", NOW)
    if isinstance(expected, str):
        with pytest.raises(BillingError) as refused:
            credits.start_refund(session, payment.id, amount, "now", NOW)
        assert refused.value.code == expected
        return
    refund = credits.start_refund(session, payment.id, amount, "now", NOW)
    assert (refund.amount, refund.status) == (expected, "pending")
    credits.record_refund_outcome(session, refund.id, True, f"re_{refund.id}", NOW)
    credits.record_refund_outcome(session, refund.id, True, f"re_{refund.id}", NOW)  # a repeat changes nothing
    events = session.scalars(select(OutboundEvent).where(OutboundEvent.type == "refund.created")).all()
    assert len(events) == len(earlier) + 1
    assert credits.refundable(session, payment) == paid - sum(earlier) - expected


def test_a_failed_refund_gives_the_amount_back_to_refund(session, make_user, settings):
    invoice = _invoice(session, make_user, settings, paid_by="demo")
    [payment] = invoice.payments
    refund = credits.start_refund(session, payment.id, None, "dup", NOW)
    credits.record_refund_outcome(session, refund.id, False, "", NOW, "declined")
    assert refund.status == "failed" and credits.refundable(session, payment) == 2900


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one writer
def test_ten_refunds_at_once_refund_once(engine, new_session, session, make_user, settings):
    import threading

    invoice = _invoice(session, make_user, settings, paid_by="demo")
    payment_id = invoice.payments[0].id
    session.commit()
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def click():
        with new_session() as s:
            barrier.wait()
            try:
                credits.start_refund(s, payment_id, None, "duplicate", NOW)
                s.commit()
                outcomes.append("refunded")
            except BillingError as exc:
                s.rollback()
                outcomes.append(exc.code)

    threads = [threading.Thread(target=click) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already_refunded"] * 9 + ["refunded"]
    with new_session() as s:
        assert sum(r.amount for r in s.scalars(select(Refund).where(Refund.payment_id == payment_id))) == 2900


# situation: (old plan, new plan, day of change in a 29-day Feb period), expected: (balance, next invoice total,
# next credit applied, next amount due, next status)
DOWNGRADES = [
    ("enterprise -> basic halfway", ("enterprise", "basic", 15), (4655, 900, 900, 0, "paid")),
    ("enterprise -> pro on the last day", ("enterprise", "pro", 29), (241, 2900, 241, 2659, "open")),
    ("pro -> basic on day one", ("pro", "basic", 1), (2000, 900, 900, 0, "paid")),
]


@pytest.mark.parametrize("situation, action, expected", DOWNGRADES, ids=[row[0] for row in DOWNGRADES])
def test_downgrade_credits_the_unused_time_and_the_next_invoices_use_it(
    session, make_user, settings, situation, action, expected
):
    old, new, day = action
    user = make_user()
    sub = subscribe(session, user, find_plan(session, old), utc(2024, 2, 1, 9), settings)
    change, invoice = change_plan(session, sub, find_plan(session, new), utc(2024, 2, day, 9), settings)
    assert change.kind == "downgrade" and invoice is None and sub.plan.code == new
    balance, total, applied, due, status = expected
    assert credits.balance(session, user.id, "USD") == balance
    run_billing(session, utc(2024, 3, 1, 9), settings, session.flush)
    [march] = session.scalars(
        select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.period_start == dt.date(2024, 3, 1))
    ).all()
    session.refresh(march)
    assert (march.total, march.credit_applied_cents, march.amount_due, march.status) == (total, applied, due, status)
    assert credits.balance(session, user.id, "USD") == balance - applied
    entries = session.scalars(select(CreditEntry).where(CreditEntry.user_id == user.id).order_by(CreditEntry.id)).all()
    assert [(e.reason, e.amount) for e in entries] == [("downgrade", balance), ("applied", -applied)]


def test_balance_pays_catch_up_invoices_in_order_without_spending_twice(session, make_user, settings):
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "basic"), utc(2024, 1, 1, 9), settings)
    credits.add_credit(session, user.id, 1500, "USD", "adjustment", "goodwill", NOW)
    run_billing(session, utc(2024, 3, 1, 9), settings, session.flush)  # Feb and Mar at once
    rows = session.scalars(
        select(Invoice).where(Invoice.subscription_id == sub.id).order_by(Invoice.period_start)
    ).all()
    for row in rows:
        session.refresh(row)
    assert [(i.period_start.month, i.credit_applied_cents, i.amount_due, i.status) for i in rows] == [
        (1, 0, 900, "open"),
        (2, 900, 0, "paid"),
        (3, 600, 300, "open"),
    ]
    assert credits.balance(session, user.id, "USD") == 0


def test_unpaid_invoice_partly_paid_by_credit_then_credited_in_full_returns_the_credit(session, make_user, settings):
    user = make_user()
    credits.add_credit(session, user.id, 1000, "USD", "adjustment", "goodwill", NOW)
    sub = subscribe(session, user, find_plan(session, "pro"), NOW, settings)
    invoice = session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id)).one()
    session.refresh(invoice)
    assert (invoice.credit_applied_cents, invoice.amount_due) == (1000, 1900)
    credits.issue_credit_note(session, invoice.id, None, "cancelled order", None, NOW, settings)
    session.refresh(invoice)
    assert (invoice.status, invoice.amount_due) == ("paid", 0)
    assert credits.balance(session, user.id, "USD") == 1000


# The same money never goes back twice: (first, then) -> what the second may still give back, or its refusal.
GIVE_BACK_ONCE = [
    ("credit to balance, then refund the payment", ("note", 2900, CN_BALANCE), ("refund", None), "already_refunded"),
    ("refund part, then credit the rest to balance", ("refund", 1000), ("note", 1900, CN_BALANCE), 1900),
    ("refund part, then credit more than the rest", ("refund", 1000), ("note", 2000, CN_BALANCE), "too_much"),
    ("credit part to balance, then refund the rest", ("note", 900, CN_BALANCE), ("refund", None), 2000),
]


@pytest.mark.parametrize("situation, first, then, expected", GIVE_BACK_ONCE, ids=[row[0] for row in GIVE_BACK_ONCE])
def test_the_same_money_never_goes_back_twice(session, make_user, settings, situation, first, then, expected):
    invoice = _invoice(session, make_user, settings, paid_by="demo")
    payment_id, line_id = invoice.payments[0].id, invoice.lines[0].id

    def act(step):
        if step[0] == "refund":
            return credits.start_refund(session, payment_id, step[1], "r", NOW).amount
        return credits.issue_credit_note(session, invoice.id, {line_id: step[1]}, "r", step[2], NOW, settings).total

    act(first)
    if isinstance(expected, str):
        with pytest.raises(BillingError) as refused:
            act(then)
        assert refused.value.code == expected
    else:
        assert act(then) == expected


def test_an_invoice_the_run_pays_by_credit_is_reported_paid_once(session, make_user, settings, listener):
    """Catching up two periods, the balance pays February in full (inside the INSERT on
    PostgreSQL) and part of March; receivers hear of February paid, once, however often it runs."""
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "basic"), utc(2024, 1, 1, 9), settings)
    credits.add_credit(session, user.id, 1500, "USD", "adjustment", "goodwill", NOW)
    session.commit()
    for _ in range(2):
        run_billing(session, utc(2024, 3, 1, 9), settings, session.commit)
    paid = session.scalars(select(OutboundEvent.data).where(OutboundEvent.type == "invoice.paid")).all()
    february = session.scalars(
        select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.period_start == dt.date(2024, 2, 1))
    ).one()
    assert (february.status, february.paid_at is not None) == ("paid", True)
    assert [(e["id"], e["status"]) for e in map(json.loads, paid)] == [(february.id, "paid")]
