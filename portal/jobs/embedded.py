"""Embedded mode: with no REDIS_URL, the same jobs and schedule run inside the web
process on an in-memory Redis stand-in, so a laptop needs nothing else."""

from __future__ import annotations

import logging
import os
import threading
import time

from rq import SimpleWorker
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

from . import context, queues, schedule

log = logging.getLogger(__name__)

# Whether this process runs the embedded worker (a nudge into the in-memory queue is
# only worth making then: nobody else would ever take it).
running = False


class ThreadWorker(SimpleWorker):
    """A worker that can live in a thread: no signal handlers, timer-based timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


def start(app, scheduler_interval: int = 5, stop: threading.Event | None = None) -> dict:
    """Start a worker thread and a scheduler thread; returns them (daemons).

    Setting `stop` ends the scheduling (the worker then has nothing more to do): tests
    do, so periodic jobs never run against later tests' data.
    """
    global running
    running = True
    stop = stop or threading.Event()
    os.environ["TZ"] = "UTC"  # rq-scheduler computes cron times in local time
    time.tzset()
    conn = queues.connection("")
    context.use_app(app)
    sched = schedule.scheduler(conn, interval=scheduler_interval)
    schedule.reconcile(sched, schedule.declared())

    # rq's own scheduler (retries with a delay) runs in this loop too: rq would
    # otherwise fork a process for it, which cannot see an in-memory Redis.
    delayed = RQScheduler([queues.queue(q, conn) for q in queues.ALL], connection=conn)

    def run_scheduler():
        while not stop.is_set():
            try:
                sched.enqueue_jobs()
                delayed.enqueue_scheduled_jobs()
            except Exception:  # keep the loop alive; the error is logged
                log.exception("embedded scheduler pass failed")
            stop.wait(scheduler_interval)

    worker = ThreadWorker([queues.queue(q, conn) for q in queues.ALL], connection=conn)
    threads = {
        "scheduler": threading.Thread(target=run_scheduler, name="embedded-scheduler", daemon=True),
        "worker": threading.Thread(
            target=lambda: worker.work(with_scheduler=False, logging_level="WARNING"),
            name="embedded-worker",
            daemon=True,
        ),
    }
    for thread in threads.values():
        thread.start()
    log.warning(
        "No REDIS_URL: running the worker and the scheduler embedded in this process "
        "(in-memory queue; set REDIS_URL and run worker.py for production)."
    )
    return threads
