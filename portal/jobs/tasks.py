"""Job functions. Each takes plain values, runs in a unit of work of the app handed to
this process (portal/jobs/context.py), re-reads state, and is safe to run twice (the
billing core is idempotent).

Workers and the schedule find jobs by their path, `portal.jobs.tasks.<name>`, and
Redis may hold queued ones: keep the names.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from flask import current_app
from flask_sqlalchemy.session import Session as FlaskSession
from rq import Retry, get_current_job
from rq.job import Dependency, Job
from sqlalchemy import event

from .. import runtime
from ..billing import collection, daily, events, invoicing
from ..payments import collect
from ..transactions import unit_of_work
from ..webhooks import sender
from . import context, embedded, queues

log = logging.getLogger(__name__)

# Transient failures (database restarting, lock timeouts) get three more tries.
RETRY = Retry(max=3, interval=[10, 60, 300])
CHUNK_TIMEOUT = 15 * 60


def _as_of(day: str | None) -> dt.datetime:
    """The moment a job acts at: now, or now on the ISO day it was queued for."""
    return runtime.as_of(dt.date.fromisoformat(day) if day else None)


def _conn():
    job = get_current_job()
    return job.connection if job else queues.connection(context.app().config["REDIS_URL"])


def _enqueue(conn, queue_name: str, func, *args, **options) -> Job:
    """Enqueue a job with the retries and result lifetimes every job of the chain has."""
    return queues.queue(queue_name, conn).enqueue(
        func, *args, retry=RETRY, result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL, **options
    )


def daily_billing(as_of: str | None = None) -> dict:
    """Fan the day's billing out: one job per id range, then one job per step after
    billing (daily.AFTER_BILLING), in that order."""
    with unit_of_work(context.app()) as session:
        now = _as_of(as_of)
        span = invoicing.due_id_range(session, now.date())
        chunk_size = runtime.billing_settings().chunk_size
    day = now.date().isoformat()
    conn = _conn()
    previous = [
        _enqueue(
            conn,
            queues.BILLING,
            bill_chunk,
            lo,
            hi,
            day,
            job_timeout=CHUNK_TIMEOUT,
            description=f"bill subscriptions {lo}-{hi} as of {day}",
        )
        for lo, hi in (invoicing.id_chunks(*span, chunk_size) if span else [])
    ]
    chunks = len(previous)
    # Each step follows the one before, even if it failed (its own retries, and
    # tomorrow's run, catch it up).
    for step in daily.AFTER_BILLING:
        queue_name, job = STEP_JOBS[step.name]
        after = Dependency(jobs=previous, allow_failure=True) if previous else None
        previous = [_enqueue(conn, queue_name, job, day, depends_on=after)]
    # The day's charges, after the billing transactions (never inside them).
    _enqueue(conn, queues.PAYMENTS, charge_due, day, depends_on=Dependency(jobs=previous, allow_failure=True))
    return {"as_of": day, "chunks": chunks}


def bill_chunk(lo: int, hi: int, as_of: str | None = None) -> dict:
    """One chunk, one transaction: a worker killed midway leaves nothing behind."""
    with unit_of_work(context.app()) as session:
        result = invoicing.bill_chunk(session, lo, hi, _as_of(as_of), runtime.billing_settings())
    return {"invoices": result.invoices, "ended": result.ended}


def _run_step(name: str, as_of: str | None) -> dict:
    with unit_of_work(context.app()) as session:
        return daily.step_named(name).run(session, _as_of(as_of), runtime.billing_settings())


def mark_overdue(as_of: str | None = None) -> dict:
    """The day's "overdue" step (also scheduled on its own)."""
    return _run_step("overdue", as_of)


def send_reminders(as_of: str | None = None) -> dict:
    """The day's "notices" step (also scheduled on its own), then delivery on the
    notifications queue."""
    counts = _run_step("notices", as_of)
    _enqueue(_conn(), queues.NOTIFICATIONS, deliver_notices)
    return counts


# The job, and its queue, that runs each step of daily.AFTER_BILLING.
STEP_JOBS = {
    "overdue": (queues.BILLING, mark_overdue),
    "notices": (queues.NOTIFICATIONS, send_reminders),
}


def _cards():
    # Charging never needs the demo's set-up page (a URL of a request): no URL here.
    return collect.card_provider(context.app().config, lambda token: "")


def charge_due(as_of: str | None = None) -> dict:
    """Fan the charges due out over the workers: attempts cut off by a crash are resumed
    here (their own key), the invoices due go out in chunks on the payments queue."""
    with unit_of_work(context.app()) as session:
        now = _as_of(as_of)
        resumed = collect.resume_stale(session, _cards(), now, runtime.billing_settings(), session.commit)
        due = collection.due_invoice_ids(session, now)
    day = now.date().isoformat()
    conn = _conn()
    chunks = collect.chunks(due, context.app().config.get("CHARGE_CHUNK_SIZE", 500))
    for ids in chunks:
        _enqueue(
            conn,
            queues.PAYMENTS,
            charge_chunk,
            ids,
            day,
            job_timeout=CHUNK_TIMEOUT,
            description=f"charge {len(ids)} invoices as of {day}",
        )
    return {"as_of": day, "due": len(due), "chunks": len(chunks), **resumed}


def charge_chunk(invoice_ids: list[int], as_of: str | None = None) -> dict:
    """Charge a chunk of invoices: the attempts committed before any call, the outcomes after.
    Run twice (a requeued job), an invoice already charged or in flight is skipped."""
    with unit_of_work(context.app()) as session:
        return collect.charge_batch(
            session, _cards(), invoice_ids, _as_of(as_of), runtime.billing_settings(), session.commit
        )


def charge_customer(user_id: int) -> dict:
    """A card saved through a webhook: charge the customer's open invoices at once."""
    with unit_of_work(context.app()) as session:
        ids = collection.retry_now_ids(session, user_id)
        return collect.charge_invoices(
            session, _cards(), ids, runtime.now(), runtime.billing_settings(), session.commit, force=True
        )


def enqueue_charge_customer(redis_url: str, user_id: int) -> bool:
    """Ask a worker to charge a customer's open invoices; False if the queue is unreachable
    (the hourly charges then pick up invoices due by their schedule)."""
    try:
        _enqueue(queues.connection(redis_url), queues.PAYMENTS, charge_customer, user_id)
    except queues.UNREACHABLE:
        return False
    return True


def deliver_notices(batch: int = 100) -> int:
    """Send what is in the outbox, a batch per transaction."""
    with unit_of_work(context.app()) as session:
        return runtime.deliver_outbox(session, batch=batch)


def nudge_delivery(redis_url: str) -> bool:
    """Ask a worker to send the outbox now (a sign-up or password link should not wait for
    the next periodic delivery). False if the queue cannot be reached: what is in the
    outbox is sent by the periodic delivery once it is back."""
    try:
        _enqueue(queues.connection(redis_url), queues.NOTIFICATIONS, deliver_notices)
    except queues.UNREACHABLE:
        return False
    return True


WEBHOOK_PASS_SECONDS = 120  # one job's share of a long backlog; it then queues the next pass


def deliver_webhooks() -> dict:
    """Fan new events out to the endpoints and send every delivery that is due.

    Run when a transaction that recorded events commits (a nudge), and every minute
    (the sweep), so retries and anything a missed nudge left go out too. Several at
    once share the work: each endpoint is sent to by one of them at a time.
    """
    with unit_of_work(context.app()) as session:
        done = sender.deliver_due(
            session, runtime.webhook_sender(), runtime.now, session.commit, time_budget=WEBHOOK_PASS_SECONDS
        )
    if done.more:
        _enqueue(_conn(), queues.NOTIFICATIONS, deliver_webhooks)
    return {"dispatched": done.dispatched, "sent": done.sent, "failed": done.failed, "more": done.more}


UNREACHABLE_PAUSE = 30.0  # after a nudge found Redis down, the next ones wait this long (seconds)
_unreachable_until = 0.0


def nudge_webhooks(redis_url: str) -> bool:
    """Ask a worker to send recorded events now; False if nobody can be asked: Redis
    cannot be reached (and then, for UNREACHABLE_PAUSE, is not tried again, so requests
    do not each wait for its connect timeout), or there is no Redis and no embedded
    worker in this process. The sweep sends the events in any case."""
    global _unreachable_until
    if not redis_url and not embedded.running:
        return False
    if time.monotonic() < _unreachable_until:
        return False
    try:
        queues.queue(queues.NOTIFICATIONS, queues.connection(redis_url)).enqueue(
            deliver_webhooks, result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL
        )
    except queues.UNREACHABLE:
        _unreachable_until = time.monotonic() + UNREACHABLE_PAUSE
        return False
    return True


def _nudge_after_commit(session) -> None:
    """A transaction that recorded events has committed: a worker sends them now."""
    if not session.info.pop(events.EMITTED, False):
        return
    try:
        nudge_webhooks(current_app.config["REDIS_URL"])
    except Exception:  # never fail what has committed; the sweep sends the events
        log.exception("could not queue the webhook delivery; the periodic sweep sends the events")


def _forget_emitted(session) -> None:
    session.info.pop(events.EMITTED, None)


def watch_events() -> None:
    """Nudge the webhook delivery after each commit that recorded events (once per process)."""
    if not event.contains(FlaskSession, "after_commit", _nudge_after_commit):
        event.listen(FlaskSession, "after_commit", _nudge_after_commit)
        event.listen(FlaskSession, "after_rollback", _forget_emitted)
