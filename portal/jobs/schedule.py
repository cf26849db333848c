"""The periodic schedule, declared as data and reconciled into rq-scheduler.

rq-scheduler does not de-duplicate cron registrations, so each entry has a fixed
job id: reconcile() adds what is missing, replaces what changed and cancels what
is no longer declared. Restarting the scheduler never doubles a job.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from rq_scheduler import Scheduler

from . import queues

PREFIX = "periodic-"

# crontab warns that a future version computes times in UTC instead of local time;
# workers and the embedded scheduler run with TZ=UTC, where the two agree.
warnings.filterwarnings("ignore", message="Version 0.22.0", category=FutureWarning)


@dataclass(frozen=True)
class Periodic:
    name: str
    cron: str  # minute hour day month weekday, in UTC
    func: str  # dotted path of the job function
    queue: str
    timeout: int = 30 * 60

    @property
    def job_id(self) -> str:
        return PREFIX + self.name


def declared() -> list[Periodic]:
    """The default schedule; each time can be changed by an environment variable."""
    env = os.environ
    return [
        Periodic(
            "billing-daily", env.get("SCHEDULE_BILLING", "5 0 * * *"), "portal.jobs.tasks.daily_billing", queues.BILLING
        ),
        Periodic(
            "overdue-hourly", env.get("SCHEDULE_OVERDUE", "0 * * * *"), "portal.jobs.tasks.mark_overdue", queues.BILLING
        ),
        Periodic(
            "reminders-daily",
            env.get("SCHEDULE_REMINDERS", "0 9 * * *"),
            "portal.jobs.tasks.send_reminders",
            queues.NOTIFICATIONS,
        ),
        # Charges cut off by a crash are resumed (same idempotency key), and a retry whose
        # day has come is made, without waiting for tomorrow's billing run.
        Periodic(
            "charges-hourly",
            env.get("SCHEDULE_CHARGES", "30 * * * *"),
            "portal.jobs.tasks.charge_due",
            queues.PAYMENTS,
        ),
        # Receipts and retries of failed sends go out within minutes, not next morning.
        Periodic(
            "notices-frequent",
            env.get("SCHEDULE_NOTICES", "*/5 * * * *"),
            "portal.jobs.tasks.deliver_notices",
            queues.NOTIFICATIONS,
        ),
        # Webhooks: new events, and retries that have come due, whatever nudge was missed.
        Periodic(
            "webhooks-sweep",
            env.get("SCHEDULE_WEBHOOKS", "* * * * *"),
            "portal.jobs.tasks.deliver_webhooks",
            queues.NOTIFICATIONS,
            timeout=10 * 60,
        ),
    ]


class PeriodicScheduler(Scheduler):
    """rq-scheduler that keeps the declared periodic jobs registered.

    The schedule lives in Redis: a Redis restarted empty (it keeps nothing on disk here)
    would otherwise leave billing, overdue marking, reminders and outbox delivery
    unscheduled until someone restarted the scheduler. Each pass checks the fixed job
    ids (one round trip) and reconciles when one is missing.
    """

    def __init__(self, *args, entries: list[Periodic], **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = entries

    def enqueue_jobs(self):
        with self.connection.pipeline() as pipe:
            for entry in self.entries:
                pipe.zscore(self.scheduled_jobs_key, entry.job_id)
            missing = None in pipe.execute()
        if missing:
            self.log.warning("periodic jobs missing from Redis (restarted empty?): %s", reconcile(self, self.entries))
        return super().enqueue_jobs()


def scheduler(conn, interval: int = 30, entries: list[Periodic] | None = None) -> Scheduler:
    """The scheduler; given the periodic `entries`, one that re-registers them if Redis lost them."""
    if entries is None:
        return Scheduler(queue_name=queues.DEFAULT, connection=conn, interval=interval)
    return PeriodicScheduler(queue_name=queues.DEFAULT, connection=conn, interval=interval, entries=entries)


def reconcile(sched: Scheduler, entries: list[Periodic]) -> dict:
    """Make the scheduled periodic jobs exactly `entries`; returns what changed."""
    wanted = {e.job_id: e for e in entries}
    present = {job.id: job for job in sched.get_jobs() if job.id.startswith(PREFIX)}
    changes: dict[str, list[str]] = {"added": [], "removed": [], "kept": []}
    for job_id, job in present.items():
        entry = wanted.get(job_id)
        if (
            entry
            and job.meta.get("cron_string") == entry.cron
            and job.func_name == entry.func
            and job.origin == entry.queue
        ):
            changes["kept"].append(job_id)
        else:
            sched.cancel(job)
            job.delete()
            changes["removed"].append(job_id)
    for job_id, entry in wanted.items():
        if job_id not in changes["kept"]:
            sched.cron(
                entry.cron,
                entry.func,
                id=job_id,
                queue_name=entry.queue,
                timeout=entry.timeout,
                result_ttl=queues.RESULT_TTL,
                description=f"{entry.name} ({entry.cron} UTC)",
                use_local_timezone=False,
            )
            changes["added"].append(job_id)
    return changes
