"""Benchmark: the web app under load, each page against the static file, in one run.

    python bench/web_load.py [--database-url URL] [--invoices 50] [--duration 5] [--rounds 3]
                             [--workers 4] [--connections 16]

Migrates a scratch PostgreSQL schema (dropped after) and seeds one customer on Pro
with about --invoices invoices and an API token, then serves the app with the
README's production command (`gunicorn --workers N wsgi:app`, gunicorn's default sync
worker class; N defaults to the README's 4) on a free loopback port, logs in through
the form for a session cookie, and drives `wrk -c<connections>` at:
  /static/app.css        the baseline: the cheapest answer the server gives
  /pricing               anonymous page
  /account               logged-in page (session cookie): subscription, invoices to pay, recent ones
  /invoices              logged-in page, the first page of the list
  GET /api/invoices/     JSON API with `Authorization: Bearer <token>`
for --duration seconds each, --rounds times (URLs interleaved, so drift in the
machine touches every URL alike), and checks that every answer was a 2xx.

Two figures per URL, each as a ratio to the static file (target: every page and API
read >= 0.25):
  req/s      the median throughput. On a machine shared with other work it moves with
             their load, so compare ratios from one run, never req/s across runs.
  CPU/req    server CPU per request: the gunicorn workers plus this app's own
             PostgreSQL backends (found by application_name; their share is shown
             apart as "of it db"), from /proc. Other load on
             the machine barely moves it, so its ratio (static CPU / page CPU) is the
             steadier figure for before/after comparisons.
Only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from portal import tokens  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.billing.catalog import seed_plans  # noqa: E402
from portal.billing.invoicing import run_billing  # noqa: E402
from portal.billing.settings import BillingSettings  # noqa: E402
from portal.billing.subscriptions import find_plan, subscribe  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Invoice, User  # noqa: E402
from tests.live_server import gunicorn_process  # noqa: E402  (the tests' server, as production runs it)

EMAIL, PASSWORD = "bench@example.com", "bench password 42"
TARGET = 0.25
WRK = shutil.which("wrk") or "/usr/bin/wrk"
TICK = os.sysconf("SC_CLK_TCK")


def scratch_schema(base_url: str) -> tuple[str, str, callable]:
    """A schema of its own; the URL also names the connections, to find their backends."""
    schema = f"bench_web_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = sa.engine.make_url(base_url).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    return url.render_as_string(hide_password=False), schema, drop


def seed(url: str, invoices: int) -> tuple[str, int]:
    """One customer on Pro since `invoices` months ago, billed up to today; an API token."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": "", "STRIPE_SECRET_KEY": ""})
    settings = BillingSettings.from_config(app.config)
    with app.app_context():
        upgrade()
        seed_plans(db.session)
        user = User(email=EMAIL, name="Bench", password_hash=generate_password_hash(PASSWORD))
        db.session.add(user)
        db.session.flush()
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start = now - dt.timedelta(days=round(30.44 * (invoices - 1)) + 1)
        subscribe(db.session, user, find_plan(db.session, "pro"), start, settings)
        db.session.commit()
        run_billing(db.session, now, settings, db.session.commit)
        _, secret = tokens.issue(db.session, user, "bench", now)
        db.session.commit()
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Invoice))
        db.engine.dispose()
    return secret, count


@contextlib.contextmanager
def serve(url: str, workers: int, instance: Path):
    """The README's production command on a free loopback port; yields (base URL, master pid)."""
    with gunicorn_process(url, instance, workers) as (base, proc):
        yield base, proc.pid


def cpu_ticks(pid: int) -> int:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    return 0


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


class ServerCpu:
    """CPU seconds used by the gunicorn workers and the app's PostgreSQL backends."""

    def __init__(self, master: int, admin: sa.Engine, app_name: str):
        self.master, self.admin, self.app_name = master, admin, app_name

    def sample(self) -> dict[str, dict[int, int]]:
        with self.admin.connect() as conn:
            backends = conn.scalars(
                sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"), {"n": self.app_name}
            ).all()
        return {
            "app": {pid: cpu_ticks(pid) for pid in [self.master, *children(self.master)]},
            "db": {pid: cpu_ticks(pid) for pid in backends},
        }

    @staticmethod
    def used(before: dict, after: dict) -> tuple[float, float]:
        """(gunicorn seconds, PostgreSQL seconds) between two samples."""
        return tuple(
            sum(ticks - before[part].get(pid, 0) for pid, ticks in after[part].items()) / TICK for part in ("app", "db")
        )


def log_in(base: str) -> str:
    """The session cookie of a real log-in through the form (CSRF on, as in production)."""
    web = requests.Session()
    page = web.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    answer = web.post(
        f"{base}/login",
        data={"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 303:
        raise SystemExit(f"log-in failed: {answer.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in web.cookies)


def wrk(url: str, seconds: float, connections: int, headers: dict[str, str]) -> tuple[int, float]:
    """(requests, seconds) of one wrk run; exits if any answer was not 2xx/3xx."""
    cmd = [WRK, f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:g}s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {url}:\n{out}")
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    elapsed = float(done.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}[done.group(3)]
    return int(done.group(1)), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL database to make a scratch schema in",
    )
    parser.add_argument("--invoices", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5, help="seconds of wrk per URL and round")
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many rounds")
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn workers (default: the README's production command)"
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("--database-url must be a PostgreSQL URL")

    url, app_name, drop = scratch_schema(args.database_url)
    admin = sa.create_engine(args.database_url)
    try:
        secret, count = seed(url, args.invoices)
        with tempfile.TemporaryDirectory() as tmp, serve(url, args.workers, Path(tmp)) as (base, master):
            cookie = log_in(base)
            targets = [
                ("/static/app.css", "/static/app.css", {}),
                ("/pricing", "/pricing", {}),
                ("/account", "/account", {"Cookie": cookie}),
                ("/invoices", "/invoices", {"Cookie": cookie}),
                ("GET /api/invoices/", "/api/invoices/", {"Authorization": f"Bearer {secret}"}),
            ]
            for _, path, headers in targets:  # a correct answer first, then warm every worker
                answer = requests.get(base + path, headers=headers, allow_redirects=False, timeout=10)
                if answer.status_code != 200:
                    raise SystemExit(f"{path} answered {answer.status_code}")
                wrk(base + path, 1, args.connections, headers)
            cpu = ServerCpu(master, admin, app_name)
            rates: dict[str, list[float]] = {name: [] for name, _, _ in targets}
            costs: dict[str, list[float]] = {name: [] for name, _, _ in targets}
            db_costs: dict[str, list[float]] = {name: [] for name, _, _ in targets}
            for _ in range(args.rounds):
                for name, path, headers in targets:
                    before = cpu.sample()
                    done, seconds = wrk(base + path, args.duration, args.connections, headers)
                    rates[name].append(done / seconds)
                    app_seconds, db_seconds = cpu.used(before, cpu.sample())
                    costs[name].append((app_seconds + db_seconds) / done)
                    db_costs[name].append(db_seconds / done)
    finally:
        drop()
        admin.dispose()

    rate = {name: statistics.median(values) for name, values in rates.items()}
    cost = {name: statistics.median(values) for name, values in costs.items()}
    db_cost = {name: statistics.median(values) for name, values in db_costs.items()}
    static = "/static/app.css"
    load = os.getloadavg()[0]
    print(
        f"web load benchmark: gunicorn --workers {args.workers} (sync), PostgreSQL, "
        f"wrk -c{args.connections} -d{args.duration:g}s, medians of {args.rounds} rounds; "
        f"{count} invoices for the customer; load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"  {'URL':<22}{'req/s':>9}{'ratio':>8}{'CPU ms/req':>12}{'(of it db)':>11}{'ratio':>8}   req/s of each round"
    )
    for name in rate:
        ratio, cpu_ratio = rate[name] / rate[static], cost[static] / cost[name]
        verdict = "" if name == static else ("  ok" if min(ratio, cpu_ratio) >= TARGET else f"  below {TARGET}")
        print(
            f"  {name:<22}{rate[name]:>9,.0f}{ratio:>8.3f}{cost[name] * 1000:>12.2f}"
            f"{db_cost[name] * 1000:>11.2f}{cpu_ratio:>8.3f}   "
            f"{', '.join(f'{r:,.0f}' for r in rates[name])}{verdict}"
        )


if __name__ == "__main__":
    main()
