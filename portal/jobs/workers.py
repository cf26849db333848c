"""The RQ worker that worker.py runs: rq's forking Worker, tuned so that a job whose
worker died (SIGKILL, OOM, a machine lost) is back on its queue within a minute.

rq notices such a job only when its entry in the started-job registry expires
(last heartbeat + 90 s with rq's defaults) *and* a worker runs its maintenance
(every 10 minutes, and an idle worker only wakes every 405 s): a killed worker
stalled the billing chain for over ten minutes. Here:

- the parent process sends a heartbeat for its work horse every HEARTBEAT_EVERY
  seconds, and the entry expires HEARTBEAT_EVERY + HEARTBEAT_GRACE (30 s) after the
  last one;
- every worker, idle or between jobs, sweeps every SWEEP_EVERY seconds:
  monitor.requeue_abandoned() puts expired jobs back at the front of their queue
  at once (billing is idempotent, so a chunk that had half-run is safe to rerun),
  then rq's own clean-up does the rest.

A dead worker's job is requeued about 30-45 s after its last heartbeat (expiry, then
the next sweep of a worker: every SWEEP_EVERY s, checked between 5 s waits for work),
and run by the next free worker. A false alarm (a live
worker that missed its heartbeats for 30 s) runs a job twice at once, which the billing
core and the outbox (row locks, unique periods) are built to survive.
"""

from __future__ import annotations

from rq import Worker as RQWorker
from rq import worker_registration
from rq.exceptions import AbandonedJobError
from rq.registry import clean_registries

from ..models import utcnow
from . import monitor

HEARTBEAT_EVERY = 5
HEARTBEAT_GRACE = 25  # room for a slow Redis or a busy machine: a false alarm reruns a live job
SWEEP_EVERY = 10


class Worker(RQWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("job_monitoring_interval", HEARTBEAT_EVERY)
        kwargs.setdefault("maintenance_interval", SWEEP_EVERY)
        super().__init__(*args, **kwargs)
        self.push_exc_handler(_note_given_up)

    @property
    def dequeue_timeout(self) -> int:
        """How long an idle worker waits for a job before its next sweep (rq: 405 s)."""
        return max(1, SWEEP_EVERY // 2)

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        """How long the started-registry entry lives without a heartbeat (rq: +60 s)."""
        if job.timeout and job.timeout > 0:
            return int(min(job.timeout - working_time, self.job_monitoring_interval)) + HEARTBEAT_GRACE
        return self.job_monitoring_interval + HEARTBEAT_GRACE

    def clean_registries(self):
        """rq's maintenance, with our requeue first, under the same per-queue lock."""
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                try:
                    monitor.requeue_abandoned(queue)
                    clean_registries(queue, self._exc_handlers)
                    worker_registration.clean_worker_registry(queue)
                    queue.intermediate_queue.cleanup(self, queue)
                finally:
                    queue.release_maintenance_lock()
        self.last_cleaned_at = utcnow()  # type: ignore[assignment]  # rq declares it None


def _note_given_up(job, exc_type, exc_value, traceback):
    """rq's clean-up takes over a job abandoned too often: keep that for the console."""
    if exc_type is AbandonedJobError:
        monitor.note_abandoned(
            job.connection, job, "abandoned again: retried if it has retries left, else failed (see Failed jobs)"
        )
    return True
