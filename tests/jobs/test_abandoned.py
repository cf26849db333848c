"""Issue 12, item 12: a worker killed mid-chunk must not stall billing for ten minutes.

Real Redis, real `worker.py` processes, PostgreSQL: the first worker is SIGKILLed (with
its work horse) while its chunk waits on a row lock; a second worker, started after,
must requeue and bill that chunk, and the chain behind it (overdue marking) must go on,
within a minute. rq alone noticed after its 10-minute maintenance.
"""

import os
import signal
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from portal.jobs import monitor, queues, tasks
from portal.models import Invoice, Subscription
from tests.conftest import REDIS_URL, login
from tests.jobs.conftest import start_worker
from tests.jobs.test_jobs import _children, _wait_until_blocked_by, count, customers, periods

BOUND = 60  # seconds from the kill to the chunk billed and overdue marked (issue 12)


def _stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[0]
    except Exception:
        proc.kill()
        return proc.communicate()[0]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_chunk_whose_worker_was_killed_is_requeued_and_billed_within_a_minute(
    app, redis_conn, session, make_user, settings, client, config
):
    customers(session, make_user, settings, 6)
    ids = session.scalars(select(Subscription.id).order_by(Subscription.id)).all()
    engine = sa.create_engine(app.config["TEST_DATABASE_URI"])
    blocker = engine.connect()  # holds the last subscription: the chunk stops mid-transaction
    blocker.execute(sa.text("SELECT id FROM subscriptions WHERE id = :id FOR NO KEY UPDATE"), {"id": ids[-1]})
    blocker_pid = blocker.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    queues.queue(queues.BILLING, redis_conn).enqueue(tasks.daily_billing, "2024-02-11")
    first = start_worker(app)
    try:
        assert _wait_until_blocked_by(engine, blocker_pid), "the chunk never reached its UPDATE"
    finally:
        for pid in [*_children(first.pid), first.pid]:
            os.kill(pid, signal.SIGKILL)  # the worker, its work horse and its scheduler
        first.communicate(timeout=30)
        blocker.rollback()
        blocker.close()
        engine.dispose()
    killed = time.monotonic()
    second = start_worker(app)
    try:
        while time.monotonic() < killed + BOUND and count(session, Invoice, Invoice.status == "overdue") < 6:
            time.sleep(0.5)
        took = time.monotonic() - killed
    finally:
        output = _stop(second)
    print(f"chunk billed and overdue marked {took:.1f}s after the kill")  # a figure, not a test
    rows = periods(session)
    assert len(rows) == 12 and len(set(rows)) == 12, output  # each period billed once
    assert count(session, Invoice, Invoice.status == "overdue") == 6, f"{took:.0f}s\n{output}"

    # The console shows what happened to the chunk.
    [record] = monitor.abandoned_jobs(redis_conn)
    assert record["func"] == "portal.jobs.tasks.bill_chunk" and record["outcome"].startswith("requeued")
    config["REDIS_URL"] = REDIS_URL
    login(client, make_user(email="staff@example.com", is_staff=True))
    session.commit()
    page = client.get("/admin/jobs/").get_data(as_text=True)
    assert "Abandoned jobs" in page and record["description"] in page and "requeued (1 of 3)" in page


def _abandon(conn, job) -> None:
    """What a worker dying mid-job leaves: the job STARTED, its heartbeat entry expired."""
    from rq.job import JobStatus
    from rq.registry import StartedJobRegistry

    job.set_status(JobStatus.STARTED)
    conn.zadd(StartedJobRegistry(job.origin, connection=conn).key, {f"{job.id}:dead-execution": time.time() - 1})


def test_an_abandoned_job_is_requeued_a_few_times_then_left_to_rq_which_fails_it(redis_conn):
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    q = queues.queue(queues.BILLING, redis_conn)
    job = q.enqueue(tasks.bill_chunk, 1, 10, "2024-02-11", description="bill subscriptions 1-10")
    q.enqueue(tasks.mark_overdue, "2024-02-11")
    for attempt in range(1, monitor.MAX_REQUEUES + 1):
        q.remove(job.id)  # a worker took it...
        _abandon(redis_conn, job)  # ...and died
        assert monitor.requeue_all_abandoned(redis_conn) == [job.id]
        assert job.get_status(refresh=True) == JobStatus.QUEUED and q.job_ids[0] == job.id  # front
        job.refresh()
        assert job.meta["abandoned"] == attempt
    q.remove(job.id)
    _abandon(redis_conn, job)
    assert monitor.requeue_all_abandoned(redis_conn) == []  # enough: rq's clean-up decides
    StartedJobRegistry(queues.BILLING, connection=redis_conn).cleanup()
    assert job.id in FailedJobRegistry(queues.BILLING, connection=redis_conn).get_job_ids()
    outcomes = [a["outcome"] for a in monitor.abandoned_jobs(redis_conn)]
    assert outcomes == [f"requeued ({n} of 3)" for n in (3, 2, 1)]


def test_a_finished_job_left_in_the_started_registry_is_not_requeued(redis_conn):
    from rq.job import JobStatus

    q = queues.queue(queues.DEFAULT, redis_conn)
    job = q.enqueue(tasks.deliver_notices)
    q.remove(job.id)
    _abandon(redis_conn, job)
    job.set_status(JobStatus.FINISHED)
    assert monitor.requeue_all_abandoned(redis_conn) == [] and q.count == 0
