"""`flask subscriptions import`: subscriptions that began elsewhere, from a CSV file."""

from __future__ import annotations

from typing import IO

import click
from flask.cli import AppGroup

from ..extensions import db
from ..imports import import_subscriptions
from ..runtime import now
from ..transactions import one_transaction

cli = AppGroup("subscriptions", help="Manage subscriptions.")


@cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@one_transaction
def subscriptions_import(file: IO[str]) -> None:
    """Import FILE.csv with columns email,plan,start_date[,paid_through]."""
    report = import_subscriptions(db.session, file, now())
    if report.errors:
        for err in report.errors:
            click.echo(err, err=True)
        # Raised through the unit of work, which rolls every row back.
        raise click.ClickException(f"{len(report.errors)} bad row(s); nothing was imported.")
    click.echo(f"Imported {report.subscriptions} subscriptions ({report.created_users} new customers).")
