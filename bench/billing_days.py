"""Benchmark: the whole daily chain over N subscriptions, day by day, against raw SQL.

    python bench/billing_days.py [--n 1000000] [--database-url URL] [--chunk-size 10000]

Seeds N due subscriptions (as billing_run.py), times a raw INSERT ... SELECT of N
invoice rows as the baseline, then runs the daily chain of `flask billing run`
(without sending) on four days: the billing day, the day every invoice is overdue
and reminded, the day subscriptions become past due, and a quiet day after. Each
step's seconds are printed with its ratio to the raw insert: a step whose ratio
grows with N has gone quadratic.
"""

from __future__ import annotations

import datetime as dt
import time
from functools import partial

from bench.billing_run import AS_OF, arguments, fresh_database, raw_insert_select
from portal.billing import daily
from portal.billing.invoicing import run_billing
from portal.billing.settings import BillingSettings
from portal.extensions import db

DAYS = (("billing day", 0), ("all overdue", 17), ("past due", 22), ("quiet day", 23))


def main() -> None:
    args = arguments(__doc__).parse_args()
    settings = BillingSettings(chunk_size=args.chunk_size)

    with fresh_database(args.database_url, args.n, args.chunk_size), db.engine.connect() as conn:
        raw = raw_insert_select(conn)
    backend = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    print(f"daily chain benchmark: {backend}, N={args.n:,}, chunk={args.chunk_size:,}")
    print(f"  raw INSERT ... SELECT of N invoices   {raw:7.2f} s  (the baseline: x1.00)")
    with fresh_database(args.database_url, args.n, args.chunk_size):
        for label, offset in DAYS:
            now = AS_OF + dt.timedelta(days=offset)
            steps = (
                ("bill", partial(lambda day: run_billing(db.session, day, settings, db.session.commit).invoices, now)),
                *((step.name, partial(step.run, db.session, now, settings)) for step in daily.AFTER_BILLING),
            )
            for step, work in steps:
                t0 = time.perf_counter()
                counts = work()
                db.session.commit()
                seconds = time.perf_counter() - t0
                print(f"  {label:12s} +{offset:<2d} {step:8s} {seconds:7.2f} s  x{seconds / raw:5.2f}  {counts}")


if __name__ == "__main__":
    main()
