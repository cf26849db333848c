"""What staff see of the workers: queue lengths, the schedule, failed jobs (and retry)."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from ..models import utcnow
from . import queues, schedule

ABANDONED_KEY = "portal:jobs:abandoned"  # the latest jobs found abandoned, newest first
ABANDONED_KEEP = 50
MAX_REQUEUES = 3  # a job that keeps killing its worker (out of memory?) is then failed by rq


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
        running = StartedJobRegistry(name, connection=conn)
        out.append(
            {
                "queue": name,
                "queued": q.count,
                "running": running.get_job_count(cleanup=False),
                "failed": FailedJobRegistry(name, connection=conn).count,
            }
        )
    return out


def requeue_abandoned(queue) -> list[str]:
    """Put the jobs of dead workers back at the front of `queue`; returns their ids.

    A job is abandoned when its entry in the started registry has expired: its worker
    stopped sending heartbeats. It is requeued at once, without spending one of its
    retries (the job did not fail, its worker vanished), up to MAX_REQUEUES times; after
    that it is left to rq's clean-up, which retries or fails it and releases the jobs
    that depend on it. The caller holds the queue's maintenance lock (one sweeper at a
    time); removing the entry first also makes a concurrent sweep skip it.
    """
    conn = queue.connection
    registry = StartedJobRegistry(queue.name, connection=conn)
    requeued = []
    for entry in conn.zrangebyscore(registry.key, 0, time.time()):
        job_id = registry.parse_job_id(entry)
        try:
            job = Job.fetch(job_id, connection=conn)
        except NoSuchJobError:
            conn.zrem(registry.key, entry)
            continue
        if job.get_status(refresh=False) != JobStatus.STARTED:
            continue  # finished or failed meanwhile: rq's clean-up drops the entry
        times = int(job.meta.get("abandoned", 0))
        if times >= MAX_REQUEUES or not conn.zrem(registry.key, entry):
            continue
        worker = job.worker_name
        job.meta["abandoned"] = times + 1
        queue.enqueue_job(job, at_front=True)
        note_abandoned(conn, job, f"requeued ({times + 1} of {MAX_REQUEUES})", worker)
        requeued.append(job.id)
    return requeued


def requeue_all_abandoned(conn) -> list[str]:
    """requeue_abandoned() on every queue whose maintenance lock is free (the console)."""
    out = []
    for name in queues.ALL:
        q = queues.queue(name, conn)
        if q.acquire_maintenance_lock():
            try:
                out += requeue_abandoned(q)
            finally:
                q.release_maintenance_lock()
    return out


def note_abandoned(conn, job, outcome: str, worker: str | None = None) -> None:
    record = {
        "id": job.id,
        "queue": job.origin,
        "func": job.func_name,
        "description": job.description or "",
        "worker": worker or job.worker_name or "",
        "outcome": outcome,
        "at": utcnow().isoformat(),
    }
    with conn.pipeline() as pipe:
        pipe.lpush(ABANDONED_KEY, json.dumps(record))
        pipe.ltrim(ABANDONED_KEY, 0, ABANDONED_KEEP - 1)
        pipe.expire(ABANDONED_KEY, queues.FAILURE_TTL)
        pipe.execute()


def abandoned_jobs(conn, limit: int = 20) -> list[dict]:
    """Jobs whose worker died under them, newest first, with what became of them."""
    out = []
    for raw in conn.lrange(ABANDONED_KEY, 0, limit - 1):
        record = json.loads(raw)
        record["at"] = dt.datetime.fromisoformat(record["at"])
        out.append(record)
    return out


def scheduled_jobs(conn) -> list[dict]:
    sched = schedule.scheduler(conn)
    return [
        {
            "id": job.id,
            "func": job.func_name,
            "cron": job.meta.get("cron_string"),
            "queue": job.origin,
            "next_run": when.replace(tzinfo=dt.UTC),
        }
        for job, when in sched.get_jobs(with_times=True)
    ]


def failed_jobs(conn, limit: int = 50) -> list[FailedJob]:
    out = []
    for name in queues.ALL:
        registry = FailedJobRegistry(name, connection=conn)
        for job in Job.fetch_many(registry.get_job_ids(0, limit - 1), connection=conn):
            if job is None:
                continue
            result = job.latest_result()
            error = (result.exc_string if result else "") or ""
            out.append(
                FailedJob(
                    job.id,
                    name,
                    job.func_name or "",
                    job.description or "",
                    error.strip().splitlines()[-1] if error.strip() else "",
                    job.ended_at,
                )
            )
    return sorted(out, key=lambda j: j.ended_at or dt.datetime.min, reverse=True)[:limit]


def retry(conn, job_id: str) -> bool:
    """Put a failed job back on its queue; False if it is not (or no longer) failed."""
    for name in queues.ALL:
        registry = FailedJobRegistry(name, connection=conn)
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return True
    return False
