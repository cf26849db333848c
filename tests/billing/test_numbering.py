"""Gapless invoice numbers: 1..N, no gap, no repeat, whatever rolls back or runs at once."""

from __future__ import annotations

import queue
import threading

import pytest
from sqlalchemy import func, select

from portal.billing.invoicing import bill_chunk, id_chunks, run_billing
from portal.billing.numbering import assign_numbers, format_number
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import change_plan, find_plan, subscribe
from portal.models import Invoice, InvoiceNumberCounter, Subscription, User
from tests.conftest import utc


def make_subs(session, make_user, settings, n, start=utc(2024, 1, 31, 8)):
    plan = find_plan(session, "pro")
    subs = [subscribe(session, make_user(), plan, start, settings) for _ in range(n)]
    session.commit()
    return subs


def numbers_in_id_order(session):
    return session.scalars(select(Invoice.number).order_by(Invoice.id)).all()


def assert_gapless(session, prefix="INV-"):
    numbers = session.scalars(select(Invoice.number)).all()
    count = session.scalar(select(func.count()).select_from(Invoice))
    assert None not in numbers, "every issued invoice has its number"
    assert sorted(numbers) == [f"{prefix}{n:06d}" for n in range(1, count + 1)], "1..N, no gap, no repeat"
    return count


def test_numbers_run_one_by_one_in_the_order_invoices_were_issued(session, make_user, settings):
    make_subs(session, make_user, settings, 3)
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert numbers_in_id_order(session) == [format_number("INV", 0, n) for n in range(1, 7)]
    assert session.get(InvoiceNumberCounter, ("INV", 0)).last_number == 6


def test_a_rolled_back_chunk_gives_its_numbers_back(session, make_user, settings):
    make_subs(session, make_user, settings, 4)  # INV-000001..4, committed
    # A chunk bills and numbers, then its transaction fails: nothing of it stays.
    [(lo, hi)] = list(id_chunks(1, 4, 10))
    issued = bill_chunk(session, lo, hi, utc(2024, 3, 1), settings)
    assert issued.invoices == 4
    assert len(set(numbers_in_id_order(session))) == 8  # numbered inside the chunk's transaction
    session.rollback()
    assert assert_gapless(session) == 4
    # The next attempt gives the very numbers the failed one had.
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert assert_gapless(session) == 8


def test_a_run_failing_after_some_chunks_leaves_no_gap(session, make_user):
    settings = BillingSettings(chunk_size=2)
    make_subs(session, make_user, settings, 6)
    commits = iter(range(100))

    def commit_then_fail_on_the_third_chunk():
        if next(commits) == 2:
            raise RuntimeError("worker killed")
        session.commit()

    with pytest.raises(RuntimeError):
        run_billing(session, utc(2024, 2, 29, 8), settings, commit_then_fail_on_the_third_chunk)
    session.rollback()
    assert assert_gapless(session) == 6 + 4  # two chunks of the run are in
    run_billing(session, utc(2024, 2, 29, 8), settings, session.commit)
    assert assert_gapless(session) == 12


def test_numbers_per_year_restart_at_one(session, make_user):
    settings = BillingSettings(invoice_prefix="ACME", invoice_number_per_year=True)
    plan = find_plan(session, "pro")
    subscribe(session, make_user(), plan, utc(2024, 12, 1, 8), settings)
    session.commit()
    run_billing(session, utc(2025, 2, 1, 8), settings, session.commit)
    assert numbers_in_id_order(session) == ["ACME-2024-000001", "ACME-2025-000001", "ACME-2025-000002"]


def test_an_invoice_left_without_a_number_gets_the_next_one(session, make_user, settings):
    [sub] = make_subs(session, make_user, settings, 1)
    session.execute(Invoice.__table__.update().values(number=None))  # e.g. written by a restore
    session.commit()
    assert assign_numbers(session, settings) == 1
    session.commit()
    assert numbers_in_id_order(session) == ["INV-000002"]  # number 1 was given once: never again
    change_plan(session, sub, find_plan(session, "enterprise"), utc(2024, 2, 10), settings)
    session.commit()
    assert numbers_in_id_order(session) == ["INV-000002", "INV-000003"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one writer
def test_concurrent_workers_and_a_rolled_back_chunk_leave_numbers_1_to_n(session, new_session, make_user):
    """Four workers bill chunks at once (one of them rolls its first chunk back, as a killed
    worker's transaction would), while two whole runs and plan upgrades race them."""
    settings = BillingSettings(chunk_size=5)
    subs = make_subs(session, make_user, settings, 60)
    upgrades = [s.id for s in subs[:10]]
    now = utc(2024, 4, 2)
    chunks: queue.Queue[tuple[int, int]] = queue.Queue()
    for chunk in id_chunks(subs[0].id, subs[-1].id, settings.chunk_size):
        chunks.put(chunk)
    barrier = threading.Barrier(9)
    card_savers = [s.user_id for s in subs[10:40:3]]
    newcomers = [make_user().id for _ in range(5)]
    errors: list[BaseException] = []
    rolled_back = []

    def chunk_worker(rolls_back_first: bool):
        with new_session() as own:
            barrier.wait()
            while True:
                try:
                    lo, hi = chunks.get_nowait()
                except queue.Empty:
                    return
                bill_chunk(own, lo, hi, now, settings)
                if rolls_back_first and not rolled_back:
                    own.rollback()  # the chunk's invoices and its numbers are gone...
                    rolled_back.append((lo, hi))
                    chunks.put((lo, hi))  # ...and billed again later
                else:
                    own.commit()

    def whole_run():
        with new_session() as own:
            barrier.wait()
            run_billing(own, now, settings, own.commit)

    def upgrader():
        with new_session() as own:
            barrier.wait()
            enterprise = find_plan(own, "enterprise")
            for sub_id in upgrades:
                change_plan(own, own.get(Subscription, sub_id), enterprise, now, settings)
                own.commit()

    def guarded(target, *args):
        def run():
            try:
                target(*args)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return threading.Thread(target=run)

    def newcomer():  # subscribes meanwhile: a first invoice each, numbered in its own transaction
        with new_session() as own:
            barrier.wait()
            pro = find_plan(own, "pro")
            for user_id in newcomers:
                subscribe(own, own.get(User, user_id), pro, now, settings)
                own.commit()

    def card_saver():
        from portal.billing.collection import CardDetails, save_card

        with new_session() as own:
            barrier.wait()
            for k, sub_id in enumerate(card_savers):
                save_card(own, sub_id, CardDetails("demo", f"pm_demo_ok_{k}", "visa", "4242", 12, 2034), now)
                own.commit()

    threads = [guarded(chunk_worker, i == 0) for i in range(4)]
    threads += [guarded(whole_run), guarded(whole_run), guarded(upgrader), guarded(newcomer), guarded(card_saver)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert rolled_back, "one chunk was rolled back"
    session.expire_all()
    count = assert_gapless(session)
    periods = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.kind == "period"))
    assert periods == 60 * 3 + 5  # the first invoices and two renewals each, once; the newcomers' first
    # (and a proration for each upgrade made after its subscription's renewal)
    assert session.get(InvoiceNumberCounter, ("INV", 0)).last_number == count


def buyer_and_seller(session):
    return session.execute(select(Invoice.buyer_email, Invoice.seller_id).order_by(Invoice.id)).all()


@pytest.mark.parametrize("counter_taken", [False, True], ids=["numbered-in-the-insert", "numbered-at-the-end"])
def test_a_chunk_numbers_its_invoices_whether_or_not_it_got_the_counter(
    session, make_user, settings, monkeypatch, counter_taken
):
    """A chunk holding the counter writes each invoice with its number; one that found it taken
    (another worker billing) numbers them at its end. Either way: 1..N in id order, each invoice
    with its buyer and seller."""
    from portal.billing import numbering

    make_subs(session, make_user, settings, 3)
    if counter_taken:
        monkeypatch.setattr(numbering, "reserve", lambda *args: None)
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    assert numbers_in_id_order(session) == [format_number("INV", 0, n) for n in range(1, 7)]
    assert session.get(InvoiceNumberCounter, ("INV", 0)).last_number == 6
    copies = buyer_and_seller(session)
    assert all(email and seller for email, seller in copies) and len({seller for _, seller in copies}) == 1


def test_a_period_invoiced_already_leaves_no_gap_in_the_chunks_numbers(session, make_user, settings):
    """A subscription left behind its invoices (restored from a backup) offers a period the
    database refuses: the numbers the chunk had given that INSERT are taken back, and its
    invoices are numbered at the chunk's end, with no gap."""
    subs = make_subs(session, make_user, settings, 3)  # INV-000001..3
    run_billing(session, utc(2024, 3, 1), settings, session.commit)  # a renewal each: ..6
    behind = session.get(Subscription, subs[1].id)
    behind.next_period, behind.next_period_start = 1, behind.current_period_start  # back one period
    session.commit()
    result = run_billing(session, utc(2024, 4, 1), settings, session.commit)
    assert result.invoices == 3  # the April invoices; the re-offered March period was refused
    assert assert_gapless(session) == 9
    assert numbers_in_id_order(session)[:6] == [format_number("INV", 0, n) for n in range(1, 7)]


def _price_change(own, subs, settings):
    from portal.billing import pricing

    plan = find_plan(own, "pro")
    pricing.change_price(own, plan, plan.price + 1000, pricing.EXISTING, utc(2024, 3, 1), settings)


def _card_saved(own, subs, settings):
    from portal.billing.collection import CardDetails, save_card

    card = CardDetails("demo", "pm_demo_ok_9", "visa", "4242", 12, 2034)
    save_card(own, subs[1].user_id, card, utc(2024, 3, 1))  # locks the customer, then updates their subscription


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one writer
@pytest.mark.parametrize("meanwhile", [_price_change, _card_saved], ids=["price-change", "card-saved"])
def test_a_chunk_and_a_change_of_its_subscriptions_do_not_deadlock(
    session, new_session, make_user, settings, monkeypatch, meanwhile
):
    """A staff price change or a customer's new card while a chunk bills the subscriptions: the
    change waits for the chunk's locked subscriptions, and the chunk's INSERTs (whose plan_id and
    user_id the database checks with FOR KEY SHARE) must not wait for the change's lock of the
    plan or the customer."""
    import time

    from portal.billing import numbering

    subs = make_subs(session, make_user, settings, 3)
    locked, errors = threading.Event(), []
    reserve = numbering.reserve

    def reserve_then_pause(*args):
        held = reserve(*args)
        locked.set()  # the chunk holds its subscriptions (and the counter)...
        time.sleep(0.5)  # ...while the change locks its plan or customer and waits for them
        return held

    monkeypatch.setattr(numbering, "reserve", reserve_then_pause)

    def chunk():
        with new_session() as own:
            bill_chunk(own, 1, 10**9, utc(2024, 3, 1), settings)
            own.commit()

    def change():
        locked.wait(10)
        with new_session() as own:
            meanwhile(own, subs, settings)
            own.commit()

    def guarded(target):
        def run():
            try:
                target()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return threading.Thread(target=run)

    threads = [guarded(chunk), guarded(change)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    session.expire_all()
    assert assert_gapless(session) == 6


def test_a_counter_behind_the_issued_numbers_stops_the_run_and_rewrites_no_issued_invoice(session, make_user, settings):
    """A counter restored behind the invoices (INV-000002 and 3 exist, the counter says 1): the
    chunk's INSERT skips the rows whose number is taken. That must not be taken for a period
    invoiced already: the invoices holding those numbers keep them, and their buyer as issued."""
    from sqlalchemy import update

    from portal.models import User

    make_subs(session, make_user, settings, 3)
    issued = session.execute(select(Invoice.id, Invoice.number, Invoice.buyer_email).order_by(Invoice.id)).all()
    session.execute(update(InvoiceNumberCounter).values(last_number=1))
    session.execute(update(User).values(email=User.email + ".moved"))
    session.commit()
    with pytest.raises(Exception, match="counter"):
        run_billing(session, utc(2024, 3, 1), settings, session.commit)
    session.rollback()
    assert session.execute(select(Invoice.id, Invoice.number, Invoice.buyer_email).order_by(Invoice.id)).all() == issued
