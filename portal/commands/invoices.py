"""`flask invoices export`: every invoice to standard output, as CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys

import click
from flask.cli import AppGroup

from ..billing.exports import EXPORT_FIELDS, export_rows, spreadsheet_safe
from ..extensions import db

cli = AppGroup("invoices", help="Invoices.")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def invoices_export(fmt: str) -> None:
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
