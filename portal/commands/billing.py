"""`flask billing run`: the daily chain (issue, mark overdue, remind), then the outbox."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask import current_app
from flask.cli import AppGroup

from ..billing.daily import run_day
from ..extensions import db
from ..payments.collect import card_provider, charge_due
from ..runtime import as_of, billing_settings, deliver_outbox

cli = AppGroup("billing", help="Run billing.")


@cli.command("run")
@click.option(
    "--as-of", "day", type=click.DateTime(formats=["%Y-%m-%d"]), help="Bill as of this day (YYYY-MM-DD); default today."
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def billing_run(day: dt.datetime | None, as_json: bool) -> None:
    """Issue due invoices, mark overdue, queue reminders, charge saved cards, send notices."""
    now = as_of(day.date() if day else None)
    # One transaction per chunk of the run and per batch of mail: a crash halfway keeps
    # what was done, and the next run carries on from there.
    counts = run_day(db.session, now, billing_settings(), db.session.commit)
    # Then the charges due that day, each attempt committed before its call (never
    # inside the billing transactions).
    provider = card_provider(current_app.config, lambda token: "")
    counts.update(charge_due(db.session, provider, now, billing_settings(), db.session.commit))
    counts["notices_sent"] = deliver_outbox(db.session, now)
    if as_json:
        click.echo(json.dumps({"as_of": now.date().isoformat(), **counts}))
    else:
        click.echo(f"Billing as of {now.date()}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
