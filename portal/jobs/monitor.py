"""What staff see of the workers: queue lengths, the schedule, failed jobs (and retry)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry

from . import queues, schedule


@dataclass
class FailedJob:
    id: str
    queue: str
    func: str
    description: str
    error: str
    ended_at: dt.datetime | None


def queue_stats(conn) -> list[dict]:
    out = []
    for name in queues.ALL:
        q = queues.queue(name, conn)
        out.append({"queue": name, "queued": q.count,
                    "running": StartedJobRegistry(name, connection=conn).count,
                    "failed": FailedJobRegistry(name, connection=conn).count})
    return out


def scheduled_jobs(conn) -> list[dict]:
    sched = schedule.scheduler(conn)
    return [{"id": job.id, "func": job.func_name, "cron": job.meta.get("cron_string"),
             "queue": job.origin, "next_run": when.replace(tzinfo=dt.timezone.utc)}
            for job, when in sched.get_jobs(with_times=True)]


def failed_jobs(conn, limit: int = 50) -> list[FailedJob]:
    out = []
    for name in queues.ALL:
        registry = FailedJobRegistry(name, connection=conn)
        for job in Job.fetch_many(registry.get_job_ids(0, limit - 1), connection=conn):
            if job is None:
                continue
            error = (job.latest_result().exc_string if job.latest_result() else "") or ""
            out.append(FailedJob(job.id, name, job.func_name, job.description or "",
                                 error.strip().splitlines()[-1] if error.strip() else "", job.ended_at))
    return sorted(out, key=lambda j: j.ended_at or dt.datetime.min, reverse=True)[:limit]


def retry(conn, job_id: str) -> bool:
    """Put a failed job back on its queue; False if it is not (or no longer) failed."""
    for name in queues.ALL:
        registry = FailedJobRegistry(name, connection=conn)
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return True
    return False
