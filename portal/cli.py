"""`flask` commands: billing run, plans seed, subscriptions import, invoices export, ..."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .billing.daily import run_day
from .extensions import db
from .imports import import_subscriptions
from .models import Invoice, Plan, User, utcnow
from .runtime import as_of, billing_settings, deliver_outbox, now
from .passwords import weakness
from .users import by_email, create_staff

billing_cli = AppGroup("billing", help="Run billing.")
plans_cli = AppGroup("plans", help="Manage plans.")
subs_cli = AppGroup("subscriptions", help="Manage subscriptions.")
invoices_cli = AppGroup("invoices", help="Invoices.")
users_cli = AppGroup("users", help="Users.")

ISO_DATE = click.DateTime(formats=["%Y-%m-%d"])

DEFAULT_PLANS = (
    dict(code="basic", name="Basic", price=900, description="For a side project: one seat, email support.", sort_order=1),
    dict(code="pro", name="Pro", price=2900, description="For a growing team: ten seats, priority support.", sort_order=2),
    dict(code="enterprise", name="Enterprise", price=9900, description="For the whole company: unlimited seats, an account manager.", sort_order=3),
)


@billing_cli.command("run")
@click.option("--as-of", "day", type=ISO_DATE, help="Bill as of this day (YYYY-MM-DD); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def billing_run(day, as_json):
    """Issue due invoices, mark overdue, queue and send reminders."""
    now = as_of(day.date() if day else None)
    counts = run_day(db.session, now, billing_settings(), db.session.commit)
    counts["notices_sent"] = deliver_outbox(db.session, now)
    if as_json:
        click.echo(json.dumps({"as_of": now.date().isoformat(), **counts}))
    else:
        click.echo(f"Billing as of {now.date()}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def seed_plans(session) -> int:
    """Create the predefined plans that do not exist yet; edits by staff are kept."""
    existing = set(session.scalars(select(Plan.code)))
    created = 0
    for spec in DEFAULT_PLANS:
        if spec["code"] not in existing:
            session.add(Plan(currency="USD", interval="month", trial_days=0, active=True, **spec))
            created += 1
    session.flush()
    return created


@plans_cli.command("seed")
def plans_seed():
    """Create Basic, Pro and Enterprise if missing."""
    created = seed_plans(db.session)
    db.session.commit()
    click.echo(f"Plans: {created} created, {len(DEFAULT_PLANS) - created} already there.")


@subs_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
def subscriptions_import(file):
    """Import FILE.csv with columns email,plan,start_date[,paid_through]."""
    report = import_subscriptions(db.session, file, utcnow())
    if report.errors:
        db.session.rollback()
        for err in report.errors:
            click.echo(err, err=True)
        raise click.ClickException(f"{len(report.errors)} bad row(s); nothing was imported.")
    db.session.commit()
    click.echo(f"Imported {report.subscriptions} subscriptions ({report.created_users} new customers).")


EXPORT_FIELDS = ("number", "email", "plan", "period_start", "period_end", "total",
                 "currency", "status", "due_date", "paid_at")


def export_rows(session):
    query = (
        select(Invoice.id, User.email, Plan.code, Invoice.period_start, Invoice.period_end,
               Invoice.total, Invoice.currency, Invoice.status, Invoice.due_date, Invoice.paid_at)
        .join(User, User.id == Invoice.user_id)
        .outerjoin(Plan, Plan.id == Invoice.plan_id)
        .order_by(Invoice.id)
        .execution_options(yield_per=5000)
    )
    for row in session.execute(query):
        number, *rest = row
        values = [f"INV-{number:06d}", *rest]
        yield {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v)
               for k, v in zip(EXPORT_FIELDS, values)}


# A spreadsheet runs a cell that begins with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula, quoted with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@invoices_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def invoices_export(fmt):
    """Write every invoice to standard output."""
    rows = export_rows(db.session)
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    else:
        sys.stdout.write("[")
        for i, row in enumerate(rows):
            sys.stdout.write(("," if i else "") + "\n" + json.dumps(row))
        sys.stdout.write("\n]\n")


@users_cli.command("create-staff")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 8 characters.")
def users_create_staff(email, password):
    """Create a staff account (or make an existing user staff)."""
    if len(password) < 8:
        raise click.BadParameter("must be at least 8 characters", param_hint="--password")
    if reason := weakness(password, (email,)):
        raise click.BadParameter(reason, param_hint="--password")
    try:
        user = create_staff(db.session, email, password, now())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    db.session.commit()
    click.echo(f"Staff account ready: {user.email}")


@click.command("demo-setup")
def demo_setup():
    """Seed plans and a staff login for a laptop; print the login (used by `make run`)."""
    seed_plans(db.session)
    os.makedirs(current_app.instance_path, exist_ok=True)
    path = os.path.join(current_app.instance_path, "staff-login.txt")
    try:
        with open(path) as fh:
            email, password = fh.read().split()
    except (FileNotFoundError, ValueError):
        email, password = "admin@example.com", secrets.token_urlsafe(12)
        with open(path, "w") as fh:
            fh.write(f"{email} {password}\n")
        os.chmod(path, 0o600)
    user = by_email(db.session, email)
    if user is None or not user.is_staff:  # a fresh database: same login as before
        create_staff(db.session, email, password, now())
    db.session.commit()
    click.echo(f"Plans seeded. Staff login: {email} / {password}  (kept in {path})")


def init_cli(app: Flask) -> None:
    for group in (billing_cli, plans_cli, subs_cli, invoices_cli, users_cli):
        app.cli.add_command(group)
    app.cli.add_command(demo_setup)
    app.cli.add_command(serve)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="Default: $PORT, else 5000.")
def serve(host, port):
    """Serve the app for development; with no REDIS_URL, run the workers in-process too."""
    from werkzeug.serving import run_simple

    from .jobs import embedded, queues, tasks

    app = current_app._get_current_object()
    port = port or app.config["PORT"]
    if app.config["REDIS_URL"]:
        click.echo("Jobs go to Redis: run `python worker.py` and `python worker.py --scheduler` beside this.")
    else:
        embedded.start(app)
        # Catch up at start: a laptop that was off still bills the days it missed.
        queues.queue(queues.BILLING, queues.connection("")).enqueue(tasks.daily_billing)
        click.echo("Embedded worker and scheduler running in this process (no REDIS_URL).")
    mode = "Stripe" if app.config["STRIPE_SECRET_KEY"] else "demo checkout (no STRIPE_SECRET_KEY)"
    click.echo(f"Payments: {mode}. Serving on http://{host}:{port}")
    run_simple(host, port, app, threaded=True, use_reloader=False)
