"""`flask plans seed`: the predefined plans, for a new installation."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..billing.catalog import DEFAULT_PLANS, YEARLY_PLANS, seed_plans
from ..extensions import db
from ..transactions import one_transaction

cli = AppGroup("plans", help="Manage plans.")


@cli.command("seed")
@one_transaction
def plans_seed() -> None:
    """Create Basic, Pro and Enterprise if missing."""
    created = seed_plans(db.session)
    click.echo(f"Plans: {created} created, {len(DEFAULT_PLANS) + len(YEARLY_PLANS) - created} already there.")
