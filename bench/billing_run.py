"""Benchmark: the billing run over N subscriptions against a raw INSERT ... SELECT.

    python bench/billing_run.py [--n 1000000] [--database-url URL] [--chunk-size 10000]

Seeds N customers with one due period each (bulk SQL, in a schema or file of its
own, dropped after; each subscription with its own price, one in ten with an announced
new price that applies to this period), then times, in one process and one run:
  raw     INSERT ... SELECT of the same invoice rows into a scratch table defined
          exactly as `invoices` (columns, keys, foreign keys, indexes, checks);
          on PostgreSQL also with their lines (one each, in the same statement, into a
          copy of `invoice_lines`): the floor of what the run itself writes;
  run     the billing run (invoices + their lines + numbers + advancing
          subscriptions, chunked), no tax rates configured;
  taxed   the same run with taxes on: tax rates for three countries (exclusive
          19 %, inclusive 25.5 %, exclusive 10 %) and one customer in nine an
          EU business under reverse charge;
  coupons the taxed run again with a share of the subscriptions (--coupon-share, default
          one in four) holding a redeemed coupon: 25 % forever, 12.5 % for 3 periods, or 5.00
          off once; each of those invoices gets its discount line;
  credit  the same run with credit balances present: one customer in three has a
          balance (10, 20 or 30 dollars against a 29-dollar invoice: partly or wholly
          paid by credit), applied set-based to the new invoices;
  events  the same run with a webhook endpoint subscribed to every event: each invoice
          also records its invoice.issued event (without one, no event is recorded);
  re-run  the same run again (must find nothing to do).
Prints subscriptions/second for each, the ratios, and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import tempfile
import time
import uuid

import sqlalchemy as sa
from flask_migrate import upgrade

from portal.app import create_app
from portal.billing.catalog import seed_plans
from portal.billing.events import EVENT_TYPES
from portal.billing.invoicing import ISSUED_COLUMNS, LINE_COLUMNS, run_billing
from portal.billing.settings import BillingSettings
from portal.extensions import db
from portal.models import Base, Invoice, TaxRate, UTCDateTime, WebhookEndpoint, WebhookEndpointEvent

AS_OF = dt.datetime(2026, 1, 15, 0, 5, tzinfo=dt.UTC)
FIRST_ANCHOR = dt.date(2025, 12, 16)  # anchors Dec 16 .. Jan 14: each due exactly once


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def numbers(n: int) -> str:
    """A row source of 1..n, portable between PostgreSQL and SQLite."""
    return f"WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < {n}) "


def seed(conn, n: int) -> None:
    conn.execute(sa.text("CREATE TABLE bench_days (k INTEGER PRIMARY KEY, day DATE NOT NULL)"))
    conn.execute(
        sa.text("INSERT INTO bench_days (k, day) VALUES (:k, :day)"),
        [{"k": k, "day": FIRST_ANCHOR + dt.timedelta(days=k)} for k in range(30)],
    )
    created = AS_OF - dt.timedelta(days=40)
    conn.execute(
        sa.text(
            numbers(n) + "INSERT INTO users (email, name, is_staff, created_at) "
            "SELECT 'customer' || g || '@bench.test', '', false, :created FROM seq"
        ),
        {"created": created},
    )
    plan_id = conn.execute(sa.text("SELECT id FROM plans WHERE code = 'pro'")).scalar_one()
    # users.id runs 1..n in a fresh schema; spread anchors over 30 days.
    conn.execute(
        sa.text(
            "INSERT INTO subscriptions (user_id, plan_id, status, interval_months, anchor, next_period, "
            "next_period_start, current_period_start, current_period_end, cancel_at_period_end, created_at, "
            "price, pending_price, pending_price_from) "
            "SELECT u.id, :plan, 'active', 1, d.day, 0, d.day, d.day, d.day, false, :created, "
            # Each pays its own price; one in ten was told of a new price that applies now.
            "2900, CASE WHEN u.id % 10 = 0 THEN 3900 END, CASE WHEN u.id % 10 = 0 THEN :announced END "
            "FROM users u JOIN bench_days d ON d.k = u.id % 30"
        ),
        {"plan": plan_id, "created": created, "announced": FIRST_ANCHOR},
    )


def taxes_on(conn) -> None:
    """Three countries with a rate; customers spread over them, every third an EU business
    in another member state than the seller (reverse charge)."""
    conn.execute(
        sa.insert(TaxRate.__table__),
        [
            {"name": "VAT", "percent": 19, "country": "DE", "inclusive": False, "active": True, "created_at": AS_OF},
            {"name": "VAT", "percent": 25.5, "country": "FI", "inclusive": True, "active": True, "created_at": AS_OF},
            {"name": "VAT", "percent": 10, "country": "FR", "inclusive": False, "active": True, "created_at": AS_OF},
        ],
    )
    conn.execute(
        sa.text(
            "UPDATE users SET billing_country = CASE id % 3 WHEN 0 THEN 'DE' WHEN 1 THEN 'FI' ELSE 'FR' END, "
            "tax_id = CASE WHEN id % 9 = 0 THEN 'DE136695976' END"
        )
    )


def coupons_on(conn, share: float) -> int:
    """Three coupons, and a redemption for every subscription whose id falls in `share`
    (spread evenly); returns how many subscriptions hold one."""
    conn.execute(
        sa.text(
            "INSERT INTO coupons (id, name, percent_off, amount_off, currency, duration, duration_periods, "
            "times_redeemed, active, created_at) VALUES "
            "(1, 'Quarter off', 25, NULL, NULL, 'forever', NULL, 0, true, :t), "
            "(2, 'Launch', 12.5, NULL, NULL, 'repeating', 3, 0, true, :t), "
            "(3, 'Welcome', NULL, 500, 'USD', 'once', NULL, 0, true, :t)"
        ),
        {"t": AS_OF},
    )
    every = max(round(1 / share), 1) if share > 0 else 0
    if not every:
        return 0
    conn.execute(
        sa.text(
            "INSERT INTO coupon_redemptions (coupon_id, user_id, subscription_id, first_period, end_period, "
            "redeemed_at) SELECT 1 + (s.id / :every) % 3, s.user_id, s.id, 0, "
            "CASE (s.id / :every) % 3 WHEN 0 THEN NULL WHEN 1 THEN 3 ELSE 1 END, :t "
            "FROM subscriptions s WHERE s.id % :every = 0"
        ),
        {"every": every, "t": AS_OF},
    )
    return conn.execute(sa.text("SELECT count(*) FROM coupon_redemptions")).scalar_one()


CREDITED = "id % 3 = 0"  # the customers given a balance: 1000, 2000 or 3000 cents by id % 9 / 3


def credits_on(conn) -> None:
    """One customer in three holds a credit balance (two ledger entries each, netting out)."""
    for amount in ("(id % 9 / 3 + 1) * 1500", "-(id % 9 / 3 + 1) * 500"):
        conn.execute(
            sa.text(
                "INSERT INTO credit_entries (user_id, currency, amount, reason, description, created_at) "
                f"SELECT id, 'USD', {amount}, 'adjustment', 'bench', :at FROM users WHERE {CREDITED}"
            ),
            {"at": AS_OF - dt.timedelta(days=1)},
        )


def listening_on(conn) -> None:
    """A webhook endpoint subscribed to every event type."""
    conn.execute(
        sa.insert(WebhookEndpoint.__table__).values(
            id=1, url="https://hooks.bench.test/", description="", secret="whsec_bench", enabled=True,
            created_at=AS_OF, updated_at=AS_OF,
        )
    )  # fmt: skip
    conn.execute(sa.insert(WebhookEndpointEvent.__table__), [{"endpoint_id": 1, "event_type": t} for t in EVENT_TYPES])


def check_credited(n: int) -> None:
    """Each credited customer's invoice used min(balance, its price); balances never went negative."""
    applied, paid, negative = db.session.execute(
        sa.text(
            "SELECT sum(credit_applied_cents), sum(CASE WHEN status = 'paid' THEN 1 ELSE 0 END), "
            "(SELECT count(*) FROM (SELECT user_id FROM credit_entries GROUP BY user_id HAVING sum(amount) < 0) x) "
            "FROM invoices"
        )
    ).one()

    def price(k: int) -> int:  # one subscriber in ten pays the announced new price
        return 3900 if k % 10 == 0 else 2900

    balance = {k: (k % 9 // 3 + 1) * 1000 for k in range(1, n + 1) if k % 3 == 0}
    expected = sum(min(b, price(k)) for k, b in balance.items())
    assert (applied, negative) == (expected, 0), (applied, expected, negative)
    assert paid == sum(1 for k, b in balance.items() if b >= price(k)), paid


def scratch_copy_of_invoices(conn) -> sa.Table:
    """A table defined exactly as `invoices` (columns, keys, indexes, checks), empty."""
    md = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for name in ("users", "plans", "subscriptions", "seller_snapshots"):  # targets of its foreign keys
        Base.metadata.tables[name].to_metadata(md)
    scratch = Invoice.__table__.to_metadata(md, name="bench_scratch")
    for item in (*scratch.indexes, *scratch.constraints):  # names are per schema
        if item.name:
            item.name = sa.sql.elements.conv(f"bench_{item.name}")
    scratch.create(conn)
    return scratch


def raw_insert_select(conn, with_lines: bool = False) -> float:
    """The floor: write the same invoice rows with one INSERT ... SELECT, no billing logic;
    `with_lines` (PostgreSQL): each with its one line too, in the same statement, into a copy of
    `invoice_lines` whose foreign key points at the copy of `invoices`."""
    scratch = scratch_copy_of_invoices(conn)
    if with_lines:
        conn.execute(sa.text("CREATE TABLE bench_lines (LIKE invoice_lines INCLUDING ALL)"))
        conn.execute(
            sa.text(
                "ALTER TABLE bench_lines ADD FOREIGN KEY (invoice_id) REFERENCES bench_scratch (id), "
                "ADD FOREIGN KEY (coupon_id) REFERENCES coupons (id)"
            )
        )
    conn.commit()
    s, p = Base.metadata.tables["subscriptions"], Base.metadata.tables["plans"]
    today = AS_OF.date()
    stmt = scratch.insert().from_select(
        ISSUED_COLUMNS,
        sa.select(
            s.c.user_id,
            s.c.id,
            p.c.id,
            sa.literal("period"),
            sa.literal("Pro plan"),
            s.c.next_period_start,
            s.c.next_period_start,
            p.c.price,
            p.c.currency,
            sa.literal("open"),
            sa.literal(AS_OF, UTCDateTime),
            sa.literal(today + dt.timedelta(days=14), sa.Date),
            p.c.price,
            sa.literal(0),
            sa.literal(""),
        )
        .select_from(s.join(p, p.c.id == s.c.plan_id))
        .where(s.c.status != "canceled", s.c.next_period_start <= today),
    )
    if with_lines:
        written = stmt.returning(scratch.c.id, scratch.c.period_start, scratch.c.total).cte("written")
        lines = sa.Table("bench_lines", sa.MetaData(), autoload_with=conn)
        stmt = lines.insert().from_select(
            LINE_COLUMNS,
            sa.select(
                written.c.id,
                sa.literal(1),
                sa.literal("Pro plan"),
                sa.literal(1),
                written.c.total,
                written.c.total,
                written.c.period_start,
                written.c.period_start,
                sa.literal(0),
                sa.literal(0),
                sa.literal(""),
            ),
        )
    t0 = time.perf_counter()
    conn.execute(stmt)
    conn.commit()
    return time.perf_counter() - t0


def fresh_database(
    url: str,
    n: int,
    chunk: int,
    taxes: bool = False,
    coupon_share: float = 0.0,
    balances: bool = False,
    listening: bool = False,
):
    """An app on a new schema (PostgreSQL) or file (SQLite) seeded with n due subscriptions."""

    class Fresh:
        def __enter__(self):
            self.cleanup = lambda: None
            if url.startswith("postgres"):
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                admin = sa.create_engine(url)
                with admin.begin() as conn:
                    conn.execute(sa.text(f"CREATE SCHEMA {schema}"))

                def drop():
                    with admin.begin() as conn:
                        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()

                self.cleanup = drop
                db_url, options = url, {"connect_args": {"options": f"-csearch_path={schema}"}}
            else:
                self.tmp = tempfile.TemporaryDirectory()
                self.cleanup = self.tmp.cleanup
                db_url, options = f"sqlite:///{self.tmp.name}/bench.db", {}
            app = create_app(
                {"SQLALCHEMY_DATABASE_URI": db_url, "SQLALCHEMY_ENGINE_OPTIONS": options, "BILLING_CHUNK_SIZE": chunk}
            )
            self.ctx = app.app_context()
            self.ctx.push()
            upgrade()
            seed_plans(db.session)
            db.session.commit()
            t0 = time.perf_counter()
            with db.engine.connect() as conn:
                seed(conn, n)
                if taxes:
                    taxes_on(conn)
                self.discounted = coupons_on(conn, coupon_share) if coupon_share else 0
                if balances:
                    credits_on(conn)
                if listening:
                    listening_on(conn)
                conn.commit()
            self.seconds = time.perf_counter() - t0
            # Settle the new rows (hint bits, statistics) so neither contender pays for it.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE" if db.engine.dialect.name == "postgresql" else "ANALYZE"))
            return self

        def __exit__(self, *exc):
            db.session.remove()
            db.engine.dispose()
            self.ctx.pop()
            self.cleanup()

    return Fresh()


def bench(url: str, n: int, chunk_size: int, coupon_share: float = 0.25) -> dict:
    settings = BillingSettings(chunk_size=chunk_size, seller_country="FI")
    with fresh_database(url, n, chunk_size) as fresh:
        with db.engine.connect() as conn:
            raw = raw_insert_select(conn)
        seeded = fresh.seconds
    raw_lines = 0.0
    if url.startswith("postgres"):
        with fresh_database(url, n, chunk_size), db.engine.connect() as conn:
            raw_lines = raw_insert_select(conn, with_lines=True)
    with fresh_database(url, n, chunk_size):
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        first = run_billing(db.session, AS_OF, settings, db.session.commit)
        run = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = run_billing(db.session, AS_OF, settings, db.session.commit)
        rerun = time.perf_counter() - t0
        assert first.invoices == n, f"expected {n} invoices, got {first.invoices}"
        assert second.invoices == 0
    with fresh_database(url, n, chunk_size, taxes=True):
        t0 = time.perf_counter()
        taxed_run = run_billing(db.session, AS_OF, settings, db.session.commit)
        taxed = time.perf_counter() - t0
        assert taxed_run.invoices == n
        check_taxed(n)
    with fresh_database(url, n, chunk_size, taxes=True, coupon_share=coupon_share) as fresh:
        t0 = time.perf_counter()
        discounted_run = run_billing(db.session, AS_OF, settings, db.session.commit)
        discounted = time.perf_counter() - t0
        assert discounted_run.invoices == n
        check_taxed(n, fresh.discounted)
    with fresh_database(url, n, chunk_size, balances=True):
        t0 = time.perf_counter()
        credited_run = run_billing(db.session, AS_OF, settings, db.session.commit)
        credited = time.perf_counter() - t0
        assert credited_run.invoices == n
        check_credited(n)
    with fresh_database(url, n, chunk_size, listening=True):
        t0 = time.perf_counter()
        listened_run = run_billing(db.session, AS_OF, settings, db.session.commit)
        listened = time.perf_counter() - t0
        assert listened_run.invoices == n
        recorded = db.session.scalar(sa.text("SELECT count(*) FROM outbound_events WHERE type = 'invoice.issued'"))
        assert recorded == n, recorded
    return {
        "seed": seeded,
        "raw": raw,
        "raw_lines": raw_lines,
        "run": run,
        "taxed": taxed,
        "coupons": discounted,
        "discounted": fresh.discounted,
        "credited": credited,
        "events": listened,
        "rerun": rerun,
        "rss_before": rss_before,
        "rss_after": peak_rss_mb(),
        "chunks": first.chunks,
    }


def check_taxed(n: int, discounted: int = 0) -> None:
    """Every invoice numbered 1..n and taxed; total = subtotal + tax; one line each, and a
    discount line on each of the `discounted` subscriptions' invoices."""
    numbers, lines, taxed, bad = db.session.execute(
        sa.text(
            "SELECT count(DISTINCT number), (SELECT count(*) FROM invoice_lines), "
            "count(*) FILTER (WHERE tax_cents > 0), count(*) FILTER (WHERE total <> subtotal_cents + tax_cents) "
            "FROM invoices"
        )
        if db.engine.dialect.name == "postgresql"
        else sa.text(
            "SELECT count(DISTINCT number), (SELECT count(*) FROM invoice_lines), "
            "sum(tax_cents > 0), sum(total <> subtotal_cents + tax_cents) FROM invoices"
        )
    ).one()
    assert numbers == n and lines == n + discounted and bad == 0 and taxed > n // 2, (numbers, lines, taxed, bad)


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every billing benchmark takes: --n, --database-url, --chunk-size."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL URL; default: a temporary SQLite file",
    )
    parser.add_argument("--chunk-size", type=int, default=10_000)
    return parser


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=1, help="repeat on fresh data; medians are printed")
    parser.add_argument("--coupon-share", type=float, default=0.25, help="share of subscriptions with a coupon")
    args = parser.parse_args()

    results = [bench(args.database_url, args.n, args.chunk_size, args.coupon_share) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    backend = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    rate = lambda seconds: args.n / seconds if seconds else float("inf")  # noqa: E731
    print(f"billing run benchmark: {backend}, N={args.n:,}, chunk={args.chunk_size:,}, repeats={args.repeat} (medians)")
    print(f"  seed (bulk SQL)          {med['seed']:8.2f} s")
    print(f"  raw INSERT ... SELECT    {med['raw']:8.2f} s  {rate(med['raw']):>12,.0f} subs/s")
    if med["raw_lines"]:
        print(f"  raw, with their lines    {med['raw_lines']:8.2f} s  {rate(med['raw_lines']):>12,.0f} subs/s")
    print(
        f"  billing run              {med['run']:8.2f} s  {rate(med['run']):>12,.0f} subs/s  "
        f"({med['chunks']:.0f} chunks)"
    )
    print(f"  billing run, taxes on    {med['taxed']:8.2f} s  {rate(med['taxed']):>12,.0f} subs/s")
    print(
        f"  billing run, coupons     {med['coupons']:8.2f} s  {rate(med['coupons']):>12,.0f} subs/s  "
        f"({med['discounted']:,.0f} discounted, taxes on)"
    )
    print(f"  billing run, balances    {med['credited']:8.2f} s  {rate(med['credited']):>12,.0f} subs/s")
    print(f"  billing run, events      {med['events']:8.2f} s  {rate(med['events']):>12,.0f} subs/s  (listened)")
    print(f"  re-run (nothing due)     {med['rerun']:8.3f} s")
    print(f"  run rate / raw rate      {med['raw'] / med['run']:8.2f}   (target >= 0.50)")
    if med["raw_lines"]:
        print(f"  run rate / raw w/ lines  {med['raw_lines'] / med['run']:8.2f}   (the floor of what the run writes)")
    print(f"  taxed rate / raw rate    {med['raw'] / med['taxed']:8.2f}")
    print(f"  taxed rate / run rate    {med['run'] / med['taxed']:8.2f}   (taxes on vs no rates)")
    print(f"  coupons rate / raw rate  {med['raw'] / med['coupons']:8.2f}")
    print(f"  coupons rate / taxed     {med['taxed'] / med['coupons']:8.2f}   (coupons on vs the same run without)")
    print(f"  credit rate / raw rate   {med['raw'] / med['credited']:8.2f}")
    print(f"  credit rate / run rate   {med['run'] / med['credited']:8.2f}   (credit balances present vs none)")
    print(f"  events rate / raw rate   {med['raw'] / med['events']:8.2f}")
    print(f"  events rate / run rate   {med['run'] / med['events']:8.2f}   (events recorded vs none)")
    print(f"  re-run / run             {med['rerun'] / med['run']:8.4f}   (target < 0.10)")
    print(f"  peak RSS before run      {med['rss_before']:8.1f} MB, after: {med['rss_after']:.1f} MB")


if __name__ == "__main__":
    main()
