"""Workers against the machine's real Redis (and PostgreSQL for the races)."""

import datetime as dt
import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa
from rq import Retry, SimpleWorker
from rq.job import JobStatus
from sqlalchemy import func, select

from portal.billing import daily, invoicing
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.jobs import embedded, monitor, queues, schedule, tasks
from portal.models import Invoice, Notification, Subscription
from tests.conftest import utc
from tests.jobs.conftest import start_worker


def customers(session, make_user, settings, n, day=utc(2024, 1, 10, 9)):
    plan = find_plan(session, "pro")
    for _ in range(n):
        subscribe(session, make_user(), plan, day, settings)
    session.commit()


def count(session, model, *where):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def periods(session):
    return session.execute(select(Invoice.subscription_id, Invoice.period_start).where(Invoice.kind == "period")).all()


def burst(conn):
    worker = SimpleWorker([queues.queue(q, conn) for q in queues.ALL], connection=conn)
    worker.work(burst=True, with_scheduler=False)
    return worker


ATTEMPTS = []


def always_fails():
    ATTEMPTS.append(time.monotonic())
    raise RuntimeError("the database is down")


def test_a_worker_runs_the_billing_chain_end_to_end(job_app, redis_conn, session, make_user, settings, config):
    config["BILLING_CHUNK_SIZE"] = 2
    customers(session, make_user, settings, 5)
    queues.queue(queues.BILLING, redis_conn).enqueue(tasks.daily_billing, "2024-02-25")
    burst(redis_conn)
    assert count(session, Invoice) == 10  # a second period each
    assert count(session, Invoice, Invoice.status == "overdue") == 5  # January's, due Jan 24
    sent = count(session, Notification, Notification.sent_at.is_not(None))
    assert sent == count(session, Notification) == 15  # 10 issued notices + 5 overdue steps
    assert monitor.queue_stats(redis_conn)[0] == {"queue": "billing", "queued": 0, "running": 0, "failed": 0}


def test_the_daily_chain_charges_saved_cards_in_chunks_on_the_payments_queue(
    job_app, redis_conn, session, make_user, settings, config
):
    from portal.billing.collection import CardDetails, save_card
    from portal.models import PaymentAttempt

    config["CHARGE_CHUNK_SIZE"] = 2
    customers(session, make_user, settings, 5)
    for user_id in range(1, 6):
        card = f"pm_demo_ok_{user_id}" if user_id != 5 else "pm_demo_funds_5"
        save_card(session, user_id, CardDetails("demo", card, "visa", "4242", 12, 2034), utc(2024, 1, 10))
    session.commit()
    queues.queue(queues.BILLING, redis_conn).enqueue(tasks.daily_billing, "2024-01-10")
    burst(redis_conn)
    assert count(session, PaymentAttempt) == 5  # 3 chunk jobs of at most 2
    assert count(session, Invoice, Invoice.status == "paid") == 4
    assert count(session, PaymentAttempt, PaymentAttempt.failure_code == "insufficient_funds") == 1
    payments = next(q for q in monitor.queue_stats(redis_conn) if q["queue"] == "payments")
    assert payments == {"queue": "payments", "queued": 0, "running": 0, "failed": 0}
    # The same day again (a second scheduler, a retried job): nothing is charged twice.
    queues.queue(queues.PAYMENTS, redis_conn).enqueue(tasks.charge_due, "2024-01-10")
    burst(redis_conn)
    assert count(session, PaymentAttempt) == 5


def test_the_day_runs_the_same_steps_in_the_same_order_in_one_process_and_as_jobs(
    job_app, redis_conn, session, make_user, config, monkeypatch
):
    """`flask billing run` (run_day) and the fanned-out jobs both follow daily.AFTER_BILLING."""
    config["BILLING_CHUNK_SIZE"] = 2
    settings = BillingSettings(chunk_size=2)
    customers(session, make_user, settings, 5)
    ran = []
    bill = invoicing.bill_chunk

    def billing_chunk(*args, **kwargs):
        ran.append("bill")
        return bill(*args, **kwargs)

    def spy(step):
        def run(*args):
            ran.append(step.name)
            return step.run(*args)

        return daily.Step(step.name, run)

    monkeypatch.setattr(invoicing, "bill_chunk", billing_chunk)
    monkeypatch.setattr(daily, "AFTER_BILLING", tuple(spy(step) for step in daily.AFTER_BILLING))

    daily.run_day(session, utc(2024, 2, 11, 9), settings, session.commit)  # everyone's 2nd period
    sequential, ran[:] = ran[:], []
    queues.queue(queues.BILLING, redis_conn).enqueue(tasks.daily_billing, "2024-03-11")  # the 3rd
    burst(redis_conn)
    assert count(session, Invoice) == 15
    steps = [step.name for step in daily.AFTER_BILLING]
    assert sequential == ran == ["bill"] * 3 + steps  # three chunks of two, then each step once


def test_a_failing_job_is_retried_then_lands_in_the_failed_registry(job_app, redis_conn):
    ATTEMPTS.clear()
    q = queues.queue(queues.DEFAULT, redis_conn)
    job = q.enqueue(always_fails, retry=Retry(max=2), failure_ttl=queues.FAILURE_TTL)
    burst(redis_conn)
    job.refresh()
    assert job.get_status() == JobStatus.FAILED
    assert len(ATTEMPTS) == 3  # the first try and two retries
    [failed] = monitor.failed_jobs(redis_conn)
    assert failed.id == job.id and "RuntimeError: the database is down" in failed.error
    assert monitor.retry(redis_conn, job.id) is True
    assert job.get_status(refresh=True) == JobStatus.QUEUED
    assert monitor.retry(redis_conn, "no-such-job") is False


def test_reconciling_the_schedule_twice_keeps_the_same_jobs(redis_conn, monkeypatch):
    sched = schedule.scheduler(redis_conn)
    entries = schedule.declared()
    first = schedule.reconcile(sched, entries)
    second = schedule.reconcile(sched, entries)
    assert sorted(first["added"]) == sorted(e.job_id for e in entries) and second["added"] == []
    jobs = monitor.scheduled_jobs(redis_conn)
    assert sorted(j["id"] for j in jobs) == sorted(e.job_id for e in entries)
    billing = next(j for j in jobs if j["id"] == "periodic-billing-daily")
    assert billing["cron"] == "5 0 * * *" and billing["queue"] == "billing"
    assert (billing["next_run"].hour, billing["next_run"].minute) == (0, 5)  # UTC
    # Changing one entry replaces it; dropping one removes it from Redis.
    monkeypatch.setenv("SCHEDULE_REMINDERS", "30 8 * * *")
    changed = schedule.reconcile(sched, [e for e in schedule.declared() if e.name != "overdue-hourly"])
    assert sorted(changed["removed"]) == ["periodic-overdue-hourly", "periodic-reminders-daily"]
    assert changed["added"] == ["periodic-reminders-daily"]
    assert sorted(j["id"] for j in monitor.scheduled_jobs(redis_conn)) == [
        "periodic-billing-daily",
        "periodic-charges-hourly",
        "periodic-notices-frequent",
        "periodic-reminders-daily",
        "periodic-webhooks-sweep",
    ]


def test_embedded_mode_runs_a_scheduled_job(app, session, make_user, settings):
    customers(session, make_user, settings, 2)
    conn = queues.connection("")
    conn.flushdb()  # only this test's jobs on the in-process queue
    stop = threading.Event()
    embedded.start(app, scheduler_interval=1, stop=stop)
    try:
        sched = schedule.scheduler(conn)
        sched.enqueue_at(
            dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1),
            tasks.daily_billing,
            "2024-02-11",
            queue_name=queues.BILLING,
        )
        deadline = time.monotonic() + 20
        while count(session, Invoice) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(session, Invoice) == 4
        assert {j["id"] for j in monitor.scheduled_jobs(conn)} >= {"periodic-billing-daily"}
    finally:
        # Its periodic jobs (overdue marking every hour, the outbox every five minutes)
        # must not go on running against the data of the tests after this one.
        stop.set()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_workers_on_the_same_run_bill_each_period_once(app, redis_conn, session, make_user, settings):
    customers(session, make_user, settings, 40)
    billing = queues.queue(queues.BILLING, redis_conn)
    for _ in range(2):  # the run enqueued twice, worked by two worker processes at once
        billing.enqueue(tasks.daily_billing, "2024-04-11")
    workers = [start_worker(app, "--burst", BILLING_CHUNK_SIZE=3) for _ in range(2)]
    outputs = [w.communicate(timeout=180)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    rows = periods(session)
    assert len(rows) == 40 * 4 and len(set(rows)) == len(rows)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_chunk_leaves_nothing_and_the_rerun_bills_once(
    app, redis_conn, session, make_user, settings
):
    customers(session, make_user, settings, 6)
    ids = session.scalars(select(Subscription.id).order_by(Subscription.id)).all()
    # Hold one subscription row: the chunk inserts its invoices, then waits on this
    # lock in the middle of its transaction.
    engine = sa.create_engine(app.config["TEST_DATABASE_URI"])
    blocker = engine.connect()
    blocker.execute(sa.text("SELECT id FROM subscriptions WHERE id = :id FOR NO KEY UPDATE"), {"id": ids[-1]})
    blocker_pid = blocker.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    queues.queue(queues.BILLING, redis_conn).enqueue(tasks.bill_chunk, ids[0], ids[-1], "2024-02-11")
    worker = start_worker(app, "--burst")
    try:
        assert _wait_until_blocked_by(engine, blocker_pid), "the chunk never reached its UPDATE"
    finally:
        for pid in [*_children(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)  # the worker and its work horse, mid-transaction
        worker.wait(timeout=30)
        blocker.rollback()
        blocker.close()
        engine.dispose()
    time.sleep(0.5)  # PostgreSQL notices the dead connection and rolls its transaction back
    assert count(session, Invoice) == 6  # only the first invoices from subscribe
    redis_conn.flushdb()
    queues.queue(queues.BILLING, redis_conn).enqueue(tasks.bill_chunk, ids[0], ids[-1], "2024-02-11")
    rerun = start_worker(app, "--burst")
    assert rerun.wait(timeout=120) == 0, rerun.communicate()[0]
    rows = periods(session)
    assert len(rows) == 12 and len(set(rows)) == 12


def _wait_until_blocked_by(engine, pid: int, seconds: float = 60) -> bool:
    """True once some session waits for a lock that session `pid` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:  # a new transaction: pg_stat_activity is a per-transaction snapshot
            if conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"), {"pid": pid}
            ).scalar():
                return True
        time.sleep(0.1)
    return False


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        return []


def test_every_step_of_the_day_has_its_job_and_no_job_is_left_over():
    """A step added to billing.daily.AFTER_BILLING without a job fails here, not in a worker at night."""
    from portal.billing.daily import AFTER_BILLING
    from portal.jobs.tasks import STEP_JOBS

    assert set(STEP_JOBS) == {step.name for step in AFTER_BILLING}
