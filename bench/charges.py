"""Benchmark: automatic collection, in one invocation on PostgreSQL and a real Redis.

    python -m bench.charges --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --redis-url redis://127.0.0.1:6379/14 [--n 100000] [--charge-n N] [--chunk-size 10000] [--charge-chunk 1000]

1. The billing run over N due subscriptions with automatic collection OFF (no saved
   cards, `send_invoice`) and ON (every customer has a default card and
   `charge_automatically`), `--repeat` times each on fresh data: the run issues the
   invoices and must not slow down (charges run after it, on the payments queue).
   Prints the medians and the ON/OFF ratio.
2. Charging the N invoices it issued: the day's `charge_due` job fans them out in chunks
   on the payments queue, then 1 and then 2 `python worker.py --burst` processes charge
   them through the real stripe SDK against the project's local Stripe fake (an HTTP
   server in this process). A chunk's attempts are committed before its calls and its
   outcomes after. Prints seconds, charges/second and the 2-worker speed-up over 1.
Between the two, the baseline of the same session: `--baseline-n` invoices charged in this
process one at a time (charge_invoice: ~17 statements and two commits per charge) and a
chunk at a time (charge_batch), `--repeat` times each; prints medians, ms per charge and
the ratio.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis
import sqlalchemy as sa
from flask import current_app
from werkzeug.serving import WSGIRequestHandler

from bench.billing_run import AS_OF, arguments, fresh_database
from portal.billing.collection import due_invoice_ids
from portal.billing.invoicing import run_billing
from portal.billing.settings import BillingSettings
from portal.extensions import db
from portal.jobs import context, tasks
from portal.payments.collect import charge_batch, charge_invoices, chunks
from portal.payments.gateway import StripeGateway
from tests.payments.fake_stripe import FakeStripe

ROOT = Path(__file__).resolve().parent.parent
GOOD_CARD = "4242424242424242"


def seed_cards(n: int) -> None:
    """Every customer: a Stripe customer, a default card, automatic collection (bulk SQL)."""
    created = AS_OF.replace(day=1)
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET stripe_customer_id = 'cus_' || id"))
        conn.execute(
            sa.text(
                "INSERT INTO payment_methods (user_id, provider, provider_ref, brand, last4, exp_month, exp_year, "
                "is_default, created_at) SELECT id, 'stripe', 'pm_' || id, 'visa', '4242', 12, 2034, true, :created "
                "FROM users"
            ),
            {"created": created},
        )
        conn.execute(sa.text("UPDATE subscriptions SET collection_method = 'charge_automatically'"))
    # Settle the rewritten rows, as billing_run's seed does: without it the run would pay for
    # the bulk UPDATE's dead tuples (a customer saves a card one at a time, not all at once).
    # Only these tables: a database-wide ANALYZE deadlocks with other schemas being dropped.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        prefix = "VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"
        for table in ("users", "subscriptions", "payment_methods"):
            conn.execute(sa.text(f"{prefix} {table}"))


def fake_with_cards(n: int) -> tuple[FakeStripe, str]:
    """The local Stripe fake, knowing each customer's attached test card."""
    # The fake stands in for Stripe's API, which keeps connections alive and logs nothing
    # here: a new TCP connection and a log line per request would be the fake's cost, not the app's.
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    fake = FakeStripe()
    for i in range(1, n + 1):
        fake.payment_methods[f"pm_{i}"] = {
            "id": f"pm_{i}",
            "object": "payment_method",
            "customer": f"cus_{i}",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034},
            "_number": GOOD_CARD,
        }
    return fake, fake.start()


def billing_run(url: str, n: int, chunk: int, automatic: bool) -> float:
    with fresh_database(url, n, chunk):
        if automatic:
            seed_cards(n)
        t0 = time.perf_counter()
        result = run_billing(db.session, AS_OF, BillingSettings(chunk_size=chunk), db.session.commit)
        seconds = time.perf_counter() - t0
        assert result.invoices == n
    return seconds


def count(sql: str) -> int:
    return int(db.session.scalar(sa.text(sql)) or 0)


def charging(url: str, redis_url: str, n: int, chunk: int, charge_chunk: int, workers: int) -> float:
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    with fresh_database(url, n, chunk):
        seed_cards(n)
        run_billing(db.session, AS_OF, BillingSettings(chunk_size=chunk), db.session.commit)
        fake, base = fake_with_cards(n)
        try:
            search_path = db.session.scalar(sa.text("SHOW search_path"))
            worker_url = db.engine.url.update_query_dict({"options": f"-csearch_path={search_path}"})
            config = {
                "REDIS_URL": redis_url,
                "STRIPE_SECRET_KEY": "sk_test_bench",
                "STRIPE_API_BASE": base,
                "CHARGE_CHUNK_SIZE": charge_chunk,
            }
            current_app.config.update(config)
            env = {
                **os.environ,
                **{k: str(v) for k, v in config.items()},
                "DATABASE_URL": worker_url.render_as_string(hide_password=False),
                "TZ": "UTC",
            }
            context.use_app(current_app)
            t0 = time.perf_counter()
            # The fan-out runs here, before the workers start (a burst worker finding the
            # queue empty while another still fans out would quit).
            fanned = tasks.charge_due(AS_OF.date().isoformat())
            procs = [
                subprocess.Popen(
                    [sys.executable, "worker.py", "--burst", "--queues", "payments"],
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
            assert fanned["due"] == n, fanned
            paid = count("SELECT count(*) FROM invoices WHERE status = 'paid'")
            assert paid == n, f"{paid} paid, expected {n}"
            assert count("SELECT count(*) FROM payment_attempts") == n
            assert len(fake.payment_intents) == n  # one charge per invoice, never two
        finally:
            fake.stop()
    conn.flushdb()
    return seconds


def in_process(url: str, n: int, chunk: int, charge_chunk: int, batched: bool) -> float:
    """Charge N issued invoices in this process: one charge_invoice() per invoice (an
    attempt's commit before its call, an outcome's commit after it) or charge_batch() per
    chunk (a chunk's attempts in one commit before the calls, its outcomes in one after)."""
    with fresh_database(url, n, chunk):
        seed_cards(n)
        run_billing(db.session, AS_OF, BillingSettings(chunk_size=chunk), db.session.commit)
        fake, base = fake_with_cards(n)
        try:
            provider = StripeGateway("sk_test_bench", "", base)
            settings = BillingSettings(chunk_size=chunk)
            ids = due_invoice_ids(db.session, AS_OF)
            db.session.commit()
            t0 = time.perf_counter()
            if batched:
                for part in chunks(ids, charge_chunk):
                    charge_batch(db.session, provider, part, AS_OF, settings, db.session.commit)
            else:
                charge_invoices(db.session, provider, ids, AS_OF, settings, db.session.commit)
            seconds = time.perf_counter() - t0
            assert count("SELECT count(*) FROM invoices WHERE status = 'paid'") == n
            assert len(fake.payment_intents) == n
        finally:
            fake.stop()
    return seconds


def main() -> None:
    parser = arguments(__doc__)
    parser.set_defaults(n=100_000)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--charge-chunk", type=int, default=1_000, help="invoices per charge job")
    parser.add_argument("--charge-n", type=int, default=0, help="invoices to charge (default: --n)")
    parser.add_argument("--repeat", type=int, default=3, help="billing runs per variant (medians are printed)")
    parser.add_argument(
        "--baseline-n", type=int, default=2_000, help="invoices charged per invoice vs per chunk, in process"
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("--database-url must be PostgreSQL (workers need a shared database)")

    off, on = [], []
    for _ in range(args.repeat):  # interleaved, so a busy moment of the machine hits both
        off.append(billing_run(args.database_url, args.n, args.chunk_size, automatic=False))
        on.append(billing_run(args.database_url, args.n, args.chunk_size, automatic=True))
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(
        f"billing run, automatic collection off vs on: postgresql, N={args.n:,}, chunk={args.chunk_size:,}, "
        f"repeats={args.repeat} (medians), cores={os.cpu_count()}"
    )
    print(f"  collection off   {m_off:8.2f} s  {args.n / m_off:>10,.0f} subs/s")
    print(f"  collection on    {m_on:8.2f} s  {args.n / m_on:>10,.0f} subs/s  on/off x{m_on / m_off:.2f}")

    base_n = min(args.baseline_n, args.n)
    per_invoice, batched = [], []
    for _ in range(args.repeat):
        per_invoice.append(in_process(args.database_url, base_n, args.chunk_size, args.charge_chunk, batched=False))
        batched.append(in_process(args.database_url, base_n, args.chunk_size, args.charge_chunk, batched=True))
    m_one, m_batch = statistics.median(per_invoice), statistics.median(batched)
    print(
        f"charging in one process, one invoice at a time vs a chunk at a time: N={base_n:,}, "
        f"charge chunk={args.charge_chunk:,}, repeats={args.repeat} (medians)"
    )
    print(
        f"  per invoice      {m_one:8.2f} s  {base_n / m_one:>10,.0f} charges/s  {m_one / base_n * 1000:7.2f} ms/charge"
    )
    print(
        f"  per chunk        {m_batch:8.2f} s  {base_n / m_batch:>10,.0f} charges/s  "
        f"{m_batch / base_n * 1000:7.2f} ms/charge  x{m_one / m_batch:.2f} faster"
    )

    n = args.charge_n or args.n
    one = charging(args.database_url, args.redis_url, n, args.chunk_size, args.charge_chunk, 1)
    two = charging(args.database_url, args.redis_url, n, args.chunk_size, args.charge_chunk, 2)
    print(f"charging issued invoices against the local Stripe fake: N={n:,}, charge chunk={args.charge_chunk:,}")
    for label, seconds in (("1 worker", one), ("2 workers", two)):
        print(f"  {label:16s} {seconds:8.2f} s  {n / seconds:>10,.0f} charges/s  x{one / seconds:.2f} vs 1 worker")


if __name__ == "__main__":
    main()
