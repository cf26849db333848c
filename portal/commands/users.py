"""`flask users create-staff`: a staff login for the console."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extensions import db
from ..passwords import weakness
from ..runtime import now
from ..transactions import one_transaction
from ..users import create_staff

cli = AppGroup("users", help="Users.")


@cli.command("create-staff")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
@one_transaction
def users_create_staff(email: str, password: str) -> None:
    """Create a staff account (or make an existing user staff)."""
    if len(password) < 8:
        raise click.BadParameter("must be at least 8 characters", param_hint="--password")
    if reason := weakness(password, (email,)):
        raise click.BadParameter(reason, param_hint="--password")
    try:
        user = create_staff(db.session, email, password, now())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    click.echo(f"Staff account ready: {user.email}")
