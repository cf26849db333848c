"""Job functions. Each takes plain values, builds its own app context, re-reads state,
and is safe to run twice (the billing core is idempotent)."""
from __future__ import annotations

import datetime as dt
import logging
import os
from contextlib import contextmanager

from rq import Retry, get_current_job
from rq.job import Dependency

from . import queues

log = logging.getLogger(__name__)
_app = None
_app_pid = None

# Transient failures (database restarting, lock timeouts) get three more tries.
RETRY = Retry(max=3, interval=[10, 60, 300])
CHUNK_TIMEOUT = 15 * 60


def use_app(flask_app) -> None:
    """Run jobs in this process with an existing app (embedded mode, tests)."""
    global _app, _app_pid
    _app, _app_pid = flask_app, os.getpid()


def app():
    """The app for this process, built once. A forked work horse inherits the
    parent's app but must not share its pooled database connections, so it
    drops the pool (without closing the parent's sockets) and opens its own."""
    global _app, _app_pid
    if _app is None:
        from portal import create_app

        _app, _app_pid = create_app(), os.getpid()
    elif _app_pid != os.getpid():
        from portal.extensions import db

        with _app.app_context():
            db.engine.dispose(close=False)
        _app_pid = os.getpid()
    return _app


def _as_of(day: str | None) -> dt.datetime:
    """The moment a job acts at: now, or now on the ISO day it was queued for."""
    from portal.runtime import as_of

    return as_of(dt.date.fromisoformat(day) if day else None)


def _conn():
    job = get_current_job()
    return job.connection if job else queues.connection(app().config["REDIS_URL"])


@contextmanager
def unit_of_work():
    """(session, billing settings) in an app context; commits on success, always cleans up."""
    from portal.extensions import db
    from portal.runtime import billing_settings

    with app().app_context():
        try:
            yield db.session, billing_settings()
            db.session.commit()
        finally:
            db.session.remove()


def daily_billing(as_of: str | None = None) -> dict:
    """Fan the day's billing out: one job per id range, then overdue and notices."""
    from portal.billing.invoicing import due_id_range, id_chunks

    with unit_of_work() as (session, settings):
        now = _as_of(as_of)
        span = due_id_range(session, now.date())
    day = now.date().isoformat()
    conn = _conn()
    billing = queues.queue(queues.BILLING, conn)
    chunks = [
        billing.enqueue(bill_chunk, lo, hi, day, job_timeout=CHUNK_TIMEOUT, retry=RETRY,
                        result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL,
                        description=f"bill subscriptions {lo}-{hi} as of {day}")
        for lo, hi in (id_chunks(*span, settings.chunk_size) if span else [])
    ]
    # Overdue and notices follow the chunks, even if one of them failed (its own
    # retries, and tomorrow's run, catch it up).
    after = Dependency(jobs=chunks, allow_failure=True) if chunks else None
    overdue = billing.enqueue(mark_overdue, day, depends_on=after, retry=RETRY,
                              result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL)
    queues.queue(queues.NOTIFICATIONS, conn).enqueue(
        send_reminders, day, depends_on=Dependency(jobs=[overdue], allow_failure=True), retry=RETRY,
        result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL)
    return {"as_of": day, "chunks": len(chunks)}


def bill_chunk(lo: int, hi: int, as_of: str | None = None) -> dict:
    """One chunk, one transaction: a worker killed midway leaves nothing behind."""
    from portal.billing.invoicing import bill_chunk as bill

    with unit_of_work() as (session, settings):
        result = bill(session, lo, hi, _as_of(as_of), settings)
    return {"invoices": result.invoices, "ended": result.ended}


def mark_overdue(as_of: str | None = None) -> dict:
    from portal.billing.daily import mark_overdue_and_past_due

    with unit_of_work() as (session, settings):
        counts = mark_overdue_and_past_due(session, _as_of(as_of), settings)
    return counts


def send_reminders(as_of: str | None = None) -> dict:
    """Queue the notices due today, then hand delivery to the notifications queue."""
    from portal.billing.daily import queue_notices

    with unit_of_work() as (session, settings):
        counts = queue_notices(session, _as_of(as_of), settings)
    queues.queue(queues.NOTIFICATIONS, _conn()).enqueue(
        deliver_notices, retry=RETRY, result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL)
    return counts


def deliver_notices(batch: int = 100) -> int:
    """Send what is in the outbox, a batch per transaction."""
    from portal.runtime import deliver_outbox

    with unit_of_work() as (session, _):
        return deliver_outbox(session, batch=batch)


def nudge_delivery(redis_url: str) -> bool:
    """Ask a worker to send the outbox now (a sign-up or password link should not wait for
    the next periodic delivery). False if the queue cannot be reached: what is in the
    outbox is sent by the periodic delivery once it is back."""
    try:
        queues.queue(queues.NOTIFICATIONS, queues.connection(redis_url)).enqueue(
            deliver_notices, retry=RETRY, result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL)
    except queues.UNREACHABLE:
        return False
    return True
