"""The benchmarks run (on a few hundred subscriptions): a schema change cannot leave them broken
unnoticed until someone needs a figure. Their figures are for `python -m bench.X`, not for tests."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import PG_URL, REDIS_URL, service_unavailable
from tests.live_server import ROOT


def database_url(backend: str) -> str:
    if backend == "sqlite":
        return ""
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        service_unavailable("PostgreSQL", exc)
    finally:
        engine.dispose()
    return PG_URL


def run_bench(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_billing_run_benchmark_runs(backend):
    out = run_bench("bench.billing_run", "--n", "300", "--chunk-size", "100", "--database-url", database_url(backend))
    assert "run rate / raw rate" in out and "(3 chunks)" in out
    assert "taxed rate / run rate" in out  # the run with taxes on, checked for numbers and tax
    assert "coupons rate / taxed" in out and "(75 discounted, taxes on)" in out  # checked for discount lines
    assert "credit rate / run rate" in out  # the run with credit balances, checked for what they paid


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_daily_chain_benchmark_runs(backend):
    out = run_bench("bench.billing_days", "--n", "300", "--database-url", database_url(backend))
    assert "overdue" in out


def test_the_webhook_fanout_benchmark_runs():
    out = run_bench("bench.webhooks_fanout", "--n", "100", "--database-url", database_url("postgresql"))
    assert "2 workers / 1 worker speed-up" in out and "300 deliveries" in out


def test_the_workers_benchmark_runs():
    try:
        Redis.from_url(REDIS_URL).ping()
    except RedisConnectionError as exc:
        service_unavailable("Redis", exc)
    out = run_bench(
        "bench.workers_run",
        "--n",
        "300",
        "--chunk-size",
        "100",
        "--database-url",
        database_url("postgresql"),
        "--redis-url",
        REDIS_URL,
    )
    assert "2 workers" in out


def test_the_documents_benchmark_runs():
    from portal.documents import pdf

    if not pdf.available():
        service_unavailable("PDF rendering (Pango)", RuntimeError(pdf.INSTALL_HINT))
    out = run_bench("bench.documents", "--n", "3")
    assert "invoice PDF (Jinja + WeasyPrint)" in out and "mail with PDF" in out


def test_the_charges_benchmark_runs():
    try:
        Redis.from_url(REDIS_URL).ping()
    except RedisConnectionError as exc:
        service_unavailable("Redis", exc)
    out = run_bench(
        "bench.charges",
        "--n",
        "200",
        "--chunk-size",
        "100",
        "--charge-chunk",
        "100",
        "--repeat",
        "1",
        "--database-url",
        database_url("postgresql"),
        "--redis-url",
        REDIS_URL,
    )
    assert "on/off x" in out and "2 workers" in out
