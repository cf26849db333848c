import datetime as dt
import threading

import pytest
from sqlalchemy import select, update

from portal.billing.invoicing import bill_chunk, id_chunks, run_billing
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, Plan, Subscription
from tests.conftest import utc

D = dt.date


def periods(session, sub_id=None):
    q = select(Invoice.subscription_id, Invoice.period_start, Invoice.period_end).where(Invoice.kind == "period")
    if sub_id is not None:
        q = q.where(Invoice.subscription_id == sub_id)
    return session.execute(q.order_by(Invoice.subscription_id, Invoice.period_start)).all()


def make_subs(session, make_user, settings, n, start=utc(2024, 1, 31, 8), plan="pro"):
    p = find_plan(session, plan)
    subs = [subscribe(session, make_user(), p, start, settings) for _ in range(n)]
    session.commit()
    return subs


def test_run_twice_gives_the_same_invoices(session, make_user, settings):
    make_subs(session, make_user, settings, 3)
    first = run_billing(session, utc(2024, 3, 1), settings, session.commit)
    snapshot = session.execute(select(Invoice.id, Invoice.subscription_id, Invoice.period_start, Invoice.total)).all()
    second = run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert first.invoices == 3 and second.invoices == 0
    assert (
        session.execute(select(Invoice.id, Invoice.subscription_id, Invoice.period_start, Invoice.total)).all()
        == snapshot
    )


def test_catch_up_after_three_missed_months(session, make_user, settings):
    [sub] = make_subs(session, make_user, settings, 1)
    result = run_billing(session, utc(2024, 5, 2), settings, session.commit)
    assert result.invoices == 3
    assert [(p[1], p[2]) for p in periods(session, sub.id)] == [
        (D(2024, 1, 31), D(2024, 2, 29)),
        (D(2024, 2, 29), D(2024, 3, 31)),
        (D(2024, 3, 31), D(2024, 4, 30)),
        (D(2024, 4, 30), D(2024, 5, 31)),
    ]
    session.refresh(sub)
    assert (sub.next_period, sub.next_period_start) == (4, D(2024, 5, 31))
    [line] = session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id)).first().display_lines
    assert (line.description, line.amount, line.period_end) == ("Pro plan", 2900, D(2024, 2, 29))


def test_yearly_plan_from_a_leap_day(session, make_user, settings):
    plan = Plan(code="year", name="Yearly", price=29000, currency="USD", interval="year")
    session.add(plan)
    sub = subscribe(session, make_user(), plan, utc(2024, 2, 29), settings)
    session.commit()
    run_billing(session, utc(2028, 3, 1), settings, session.commit)
    assert [p[1] for p in periods(session, sub.id)] == [
        D(2024, 2, 29),
        D(2025, 2, 28),
        D(2026, 2, 28),
        D(2027, 2, 28),
        D(2028, 2, 29),
    ]


def test_editing_a_plans_price_leaves_existing_subscribers_price_alone(session, make_user, settings):
    [sub] = make_subs(session, make_user, settings, 1)
    find_plan(session, "pro").price = 3900
    session.commit()
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    totals = session.scalars(select(Invoice.total).where(Invoice.subscription_id == sub.id).order_by(Invoice.id)).all()
    assert totals == [2900, 2900]  # the price it subscribed at (billing/pricing.py moves it, with notice)


def test_invoice_numbers_are_unique_and_increase(session, make_user, settings):
    make_subs(session, make_user, settings, 4)
    run_billing(session, utc(2024, 4, 1), settings, session.commit)
    invoices = session.scalars(select(Invoice).order_by(Invoice.issued_at, Invoice.id)).all()
    numbers = [i.number for i in invoices]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) == 12
    assert numbers[0] == "INV-000001"


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_every_chunk_size_bills_everyone_once(session, make_user, chunk_size):
    settings = BillingSettings(chunk_size=chunk_size)
    make_subs(session, make_user, settings, 5)
    result = run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert result.invoices == 5
    assert result.chunks == len(list(id_chunks(1, 5, chunk_size)))
    assert len(periods(session)) == 10


def test_a_chunk_rolled_back_midway_is_billed_by_the_next_run(session, make_user, settings):
    subs = make_subs(session, make_user, settings, 3)
    bill_chunk(session, subs[0].id, subs[-1].id, utc(2024, 3, 1), settings)
    session.rollback()  # the worker died before commit: nothing of the chunk remains
    assert len(periods(session)) == 3
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert len(periods(session)) == 6


def test_the_unique_period_constraint_stops_a_duplicate(session, make_user, settings):
    [sub] = make_subs(session, make_user, settings, 1)
    # Rewind the subscription as a stale run would see it: the period is billed already.
    session.execute(update(Subscription).values(next_period=0, next_period_start=D(2024, 1, 31)))
    result = run_billing(session, utc(2024, 2, 1), settings, session.commit)
    assert result.invoices == 0
    assert len(periods(session, sub.id)) == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one writer
def test_two_runs_at_once_bill_each_period_once(session, new_session, make_user):
    settings = BillingSettings(chunk_size=7)
    make_subs(session, make_user, settings, 60)
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        with new_session() as own:
            try:
                barrier.wait()
                run_billing(own, utc(2024, 5, 2), settings, own.commit)
            except Exception as exc:  # surfaced below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    rows = periods(session)
    assert len(rows) == 60 * 4 and len(set(rows)) == len(rows)
    assert set(session.scalars(select(Subscription.next_period))) == {4}
