"""Benchmark: the web app under load, each page against the static file, in one run.

    python bench/web_load.py [--database-url URL] [--invoices 50] [--duration 5] [--rounds 3]
                             [--workers 2] [--connections 16]

Migrates a scratch PostgreSQL schema (dropped after) and seeds one customer on Pro
with about --invoices invoices and an API token, then serves the app the way the
README tells production to (gunicorn's default sync workers, `wsgi:app`) on a free
loopback port, logs in for a session cookie, and drives `wrk -c<connections>` at:
  /static/app.css        the baseline: the cheapest answer the server gives
  /pricing               anonymous page
  /invoices              logged-in page (session cookie), the first page of the list
  GET /api/invoices/     JSON API with `Authorization: Bearer <token>`
for --duration seconds each, --rounds times (URLs interleaved, so drift in the
machine touches every URL alike). Prints the median req/s of each URL and its ratio
to the static file (target: every page and API read >= 0.25), and checks that every
response was a 2xx. Only ever talks to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from portal import create_app  # noqa: E402
from portal import tokens  # noqa: E402
from portal.billing.invoicing import run_billing  # noqa: E402
from portal.billing.settings import BillingSettings  # noqa: E402
from portal.billing.subscriptions import find_plan, subscribe  # noqa: E402
from portal.cli import seed_plans  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Invoice, User  # noqa: E402
from tests.live_server import gunicorn  # noqa: E402  (the project's one way to serve the app)

EMAIL, PASSWORD = "bench@example.com", "bench password 42"
TARGET = 0.25


def scratch_schema(base_url: str) -> tuple[str, callable]:
    schema = f"bench_web_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = sa.engine.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


def seed(url: str, invoices: int) -> tuple[str, int]:
    """One customer on Pro since `invoices` months ago, billed up to today; an API token."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": "",
                      "STRIPE_SECRET_KEY": ""})
    settings = BillingSettings.from_config(app.config)
    with app.app_context():
        upgrade()
        seed_plans(db.session)
        user = User(email=EMAIL, name="Bench", password_hash=generate_password_hash(PASSWORD))
        db.session.add(user)
        db.session.flush()
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        start = now - dt.timedelta(days=round(30.44 * (invoices - 1)) + 1)
        subscribe(db.session, user, find_plan(db.session, "pro"), start, settings)
        db.session.commit()
        run_billing(db.session, now, settings, db.session.commit)
        _, secret = tokens.issue(db.session, user, "bench", now)
        db.session.commit()
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Invoice))
        db.engine.dispose()
    return secret, count


def log_in(base: str) -> str:
    """The session cookie of a real log-in through the form (CSRF on, as in production)."""
    web = requests.Session()
    page = web.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    answer = web.post(f"{base}/login", data={"csrf_token": token.group(1), "email": EMAIL,
                                             "password": PASSWORD}, allow_redirects=False, timeout=10)
    if answer.status_code != 303:
        raise SystemExit(f"log-in failed: {answer.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in web.cookies)


def wrk(url: str, seconds: float, connections: int, headers: dict[str, str]) -> float:
    """Requests per second of one wrk run; exits if any answer was not 2xx/3xx."""
    cmd = [WRK, f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:g}s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


WRK = shutil.which("wrk") or "/usr/bin/wrk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL database to make a scratch schema in")
    parser.add_argument("--invoices", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5, help="seconds of wrk per URL and round")
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many rounds")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("--database-url must be a PostgreSQL URL")

    url, drop = scratch_schema(args.database_url)
    try:
        secret, count = seed(url, args.invoices)
        with tempfile.TemporaryDirectory() as tmp, gunicorn(url, Path(tmp), workers=args.workers) as base:
            cookie = log_in(base)
            targets = [
                ("/static/app.css", "/static/app.css", {}),
                ("/pricing", "/pricing", {}),
                ("/invoices", "/invoices", {"Cookie": cookie}),
                ("GET /api/invoices/", "/api/invoices/", {"Authorization": f"Bearer {secret}"}),
            ]
            for _, path, headers in targets:  # a correct answer first, then warm every worker
                answer = requests.get(base + path, headers=headers, allow_redirects=False, timeout=10)
                if answer.status_code != 200:
                    raise SystemExit(f"{path} answered {answer.status_code}")
                wrk(base + path, 1, args.connections, headers)
            rates: dict[str, list[float]] = {name: [] for name, _, _ in targets}
            for _ in range(args.rounds):
                for name, path, headers in targets:
                    rates[name].append(wrk(base + path, args.duration, args.connections, headers))
    finally:
        drop()

    med = {name: statistics.median(values) for name, values in rates.items()}
    static = med["/static/app.css"]
    print(f"web load benchmark: gunicorn --workers {args.workers} (sync), PostgreSQL, "
          f"wrk -c{args.connections} -d{args.duration:g}s, medians of {args.rounds} rounds; "
          f"{count} invoices for the customer")
    print(f"  {'URL':<22}{'req/s':>10}{'ratio':>8}   all rounds")
    for name, rate in med.items():
        ratio = rate / static
        verdict = "" if name == "/static/app.css" else ("  ok" if ratio >= TARGET else f"  below {TARGET}")
        print(f"  {name:<22}{rate:>10,.0f}{ratio:>8.3f}   "
              f"{', '.join(f'{r:,.0f}' for r in rates[name])}{verdict}")


if __name__ == "__main__":
    main()
