"""Commands for a laptop: `flask demo-setup` (plans and a staff login) and `flask serve`."""

from __future__ import annotations

import os
import secrets

import click
from flask import current_app
from werkzeug.serving import run_simple

from .. import runtime
from ..billing.catalog import seed_plans
from ..extensions import db
from ..jobs import embedded, queues, tasks
from ..runtime import now
from ..transactions import one_transaction
from ..users import by_email, create_staff


@click.command("demo-setup")
@one_transaction
def demo_setup() -> None:
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
    click.echo(f"Plans seeded. Staff login: {email} / {password}  (kept in {path})")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="Default: $PORT, else 5000.")
def serve(host: str, port: int | None) -> None:
    """Serve the app for development; with no REDIS_URL, run the workers in-process too."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["PORT"]
    if app.config["REDIS_URL"]:
        click.echo("Jobs go to Redis: run `python worker.py` and `python worker.py --scheduler` beside this.")
    else:
        embedded.start(app)
        # Catch up at start: a laptop that was off still bills the days it missed.
        queues.queue(queues.BILLING, queues.connection("")).enqueue(tasks.daily_billing)
        click.echo("Embedded worker and scheduler running in this process (no REDIS_URL).")
    if missing := runtime.seller().missing():
        click.echo(f"Invoices lack the seller's {', '.join(missing)}: set them before billing real customers.")
    mode = "Stripe" if app.config["STRIPE_SECRET_KEY"] else "demo checkout (no STRIPE_SECRET_KEY)"
    click.echo(f"Payments: {mode}. Serving on http://{host}:{port}")
    run_simple(host, port, app, threaded=True, use_reloader=False)
