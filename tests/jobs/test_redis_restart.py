"""The periodic schedule lives in Redis: it must survive Redis losing its data."""

from portal.jobs import monitor


def test_the_scheduler_puts_the_periodic_jobs_back_after_redis_restarted_empty(redis_conn):
    """Issue 12, item 13 (Redis down, then back without its data): the schedule heals itself."""
    from portal.jobs import schedule

    entries = schedule.declared()
    sched = schedule.scheduler(redis_conn, entries=entries)
    schedule.reconcile(sched, entries)
    redis_conn.flushdb()  # what a restarted Redis that keeps nothing on disk holds
    sched.enqueue_jobs()  # the scheduler's next pass
    assert sorted(j["id"] for j in monitor.scheduled_jobs(redis_conn)) == sorted(e.job_id for e in entries)
