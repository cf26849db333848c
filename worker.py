"""Run an RQ worker on every queue, or (with --scheduler) the periodic scheduler.

REDIS_URL=redis://host:6379/0 python worker.py              # a worker
REDIS_URL=redis://host:6379/0 python worker.py --scheduler  # the scheduler (run one)
python worker.py --burst                                    # work until the queues are empty
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Cron times are computed in the process's local time zone: make it UTC.
os.environ["TZ"] = "UTC"
time.tzset()

from portal.app import create_app  # noqa: E402
from portal.jobs import context, queues, schedule  # noqa: E402
from portal.jobs.workers import Worker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler", action="store_true", help="run the periodic scheduler instead of a worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--queues", default=",".join(queues.ALL), help="comma-separated, in priority order")
    args = parser.parse_args(argv)

    app = create_app()
    context.use_app(app)  # built once here; each forked job reuses it with its own connections
    if not app.config["REDIS_URL"]:
        print("worker.py needs REDIS_URL (without it, `make run` runs the jobs in-process).", file=sys.stderr)
        return 2
    conn = queues.connection(app.config["REDIS_URL"])
    if args.scheduler:
        entries = schedule.declared()
        sched = schedule.scheduler(conn, entries=entries)  # re-registers them if Redis loses them
        changes = schedule.reconcile(sched, entries)
        print(f"schedule reconciled: {changes}", flush=True)
        sched.run(burst=args.burst)
        return 0
    names = [q.strip() for q in args.queues.split(",") if q.strip()]
    worker = Worker([queues.queue(n, conn) for n in names], connection=conn)
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
