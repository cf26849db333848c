"""`flask` commands, one module per domain; init_cli registers them on the app.

Each command is one unit of work (portal/transactions.py), except `billing run`,
which commits each chunk of the run and each batch of mail as it goes.
"""

from __future__ import annotations

from flask import Flask

from . import billing, development, invoices, plans, subscriptions, users


def init_cli(app: Flask) -> None:
    for command in (
        billing.cli,
        plans.cli,
        subscriptions.cli,
        invoices.cli,
        users.cli,
        development.demo_setup,
        development.serve,
    ):
        app.cli.add_command(command)
