"""Benchmark: the billing run done by 1 and by 2 RQ workers, against the single-process
run, on PostgreSQL and a real Redis, in one invocation.

    python bench/workers_run.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --redis-url redis://127.0.0.1:6379/14 [--n 1000000] [--chunk-size 10000]

Each variant starts from a freshly seeded schema (see billing_run.py). Worker variants
time the daily billing job's fan-out (one job per chunk, then overdue marking) and
`python worker.py --burst` processes until the billing queue is empty. Prints seconds,
subscriptions/second and the speed-up over one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import current_app  # noqa: E402

from bench.billing_run import AS_OF, arguments, fresh_database  # noqa: E402
from portal.billing.invoicing import run_billing  # noqa: E402
from portal.billing.settings import BillingSettings  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.jobs import context, tasks  # noqa: E402


def invoices() -> int:
    return db.session.scalar(sa.text("SELECT count(*) FROM invoices"))


def single(url: str, n: int, chunk: int) -> float:
    with fresh_database(url, n, chunk):
        t0 = time.perf_counter()
        run_billing(db.session, AS_OF, BillingSettings(chunk_size=chunk), db.session.commit)
        seconds = time.perf_counter() - t0
        assert invoices() == n
    return seconds


def with_workers(url: str, redis_url: str, n: int, chunk: int, workers: int) -> float:
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    with fresh_database(url, n, chunk):
        search_path = db.session.scalar(sa.text("SHOW search_path"))  # the fresh schema
        worker_url = db.engine.url.update_query_dict({"options": f"-csearch_path={search_path}"})
        env = {
            **os.environ,
            "DATABASE_URL": worker_url.render_as_string(hide_password=False),
            "REDIS_URL": redis_url,
            "BILLING_CHUNK_SIZE": str(chunk),
            "TZ": "UTC",
        }
        # The daily job's fan-out runs here, before the workers start: a burst worker
        # that found the queue empty while another was still fanning out would quit.
        current_app.config["REDIS_URL"] = redis_url
        context.use_app(current_app)
        t0 = time.perf_counter()
        tasks.daily_billing(AS_OF.date().isoformat())
        procs = [
            subprocess.Popen(
                [sys.executable, "worker.py", "--burst", "--queues", "billing"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        for p in procs:
            p.wait()
        seconds = time.perf_counter() - t0
        assert invoices() == n, f"{invoices()} invoices, expected {n}"
    conn.flushdb()
    return seconds


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("--database-url must be PostgreSQL (workers need a shared database)")
    base = single(args.database_url, args.n, args.chunk_size)
    one = with_workers(args.database_url, args.redis_url, args.n, args.chunk_size, 1)
    two = with_workers(args.database_url, args.redis_url, args.n, args.chunk_size, 2)
    print(f"billing run with workers: postgresql, N={args.n:,}, chunk={args.chunk_size:,}, cores={os.cpu_count()}")
    for label, seconds in (("single process", base), ("1 worker", one), ("2 workers", two)):
        print(f"  {label:16s} {seconds:8.2f} s  {args.n / seconds:>10,.0f} subs/s  x{base / seconds:.2f} vs single")


if __name__ == "__main__":
    main()
