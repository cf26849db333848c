"""The app served on a loopback port, driven by Debian's headless Chromium."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from portal import create_app
from portal.cli import create_staff, seed_plans
from portal.extensions import db
from tests.conftest import TEST_CONFIG, service_unavailable
from tests.live_server import gunicorn

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STAFF = ("staff@example.com", "staff password 1")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A fresh app (SQLite, demo payments) under gunicorn; yields (app, base_url).

    `app` is an in-process app on the same database, for the CLI and for checks.
    """
    from flask_migrate import upgrade

    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'app.db'}"
    app = create_app({**TEST_CONFIG, "WTF_CSRF_ENABLED": True, "TESTING": False,
                      "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        seed_plans(db.session)
        create_staff(db.session, *STAFF)
        db.session.commit()
    with gunicorn(url, folder / "instance") as base:
        app.config["PUBLIC_URL"] = base
        yield app, base


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        service_unavailable("Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install chromium)"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


def shot(page, name: str) -> None:
    """Keep what the customer saw, for a person to look at (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
