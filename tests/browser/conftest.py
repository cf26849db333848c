"""The app served on a loopback port, driven by Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from portal.app import create_app
from portal.billing.catalog import seed_plans
from portal.extensions import db
from portal.models import utcnow
from portal.users import create_staff
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
    app = create_app({**TEST_CONFIG, "WTF_CSRF_ENABLED": True, "TESTING": False, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        seed_plans(db.session)
        create_staff(db.session, *STAFF, utcnow())
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
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def shot(page, name: str) -> None:
    """Keep what the customer saw, for a person to look at (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture()
def open_page(browser):
    """open_page(js=True, phone=False) -> a fresh page in its own context (own cookies)."""
    contexts = []

    def open_(js: bool = True, phone: bool = False):
        viewport = {"width": 390, "height": 844} if phone else {"width": 1200, "height": 900}
        context = browser.new_context(java_script_enabled=js, viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture()
def make_customer(served):
    """A customer in the served database, optionally subscribed: (email, password)."""
    app, _ = served
    from werkzeug.security import generate_password_hash

    from portal.billing.settings import BillingSettings
    from portal.billing.subscriptions import find_plan, subscribe
    from portal.models import User, utcnow

    def make(email: str, password: str = "a long password", plan: str | None = None):
        with app.app_context():
            user = User(email=email, name="", password_hash=generate_password_hash(password), created_at=utcnow())
            db.session.add(user)
            db.session.flush()
            if plan:
                # Issued by the served app's seller, as the app itself would issue it.
                settings = BillingSettings.from_config(app.config)
                subscribe(db.session, user, find_plan(db.session, plan), utcnow(), settings)
            db.session.commit()
        return email, password

    return make


def confirmation_link(app, email: str) -> str:
    """The sign-up link mailed to `email`: the newest such mail in the outbox."""
    import re

    from sqlalchemy import select

    from portal.models import Notification, User

    with app.app_context():
        body = db.session.scalar(
            select(Notification.body)
            .join(User, User.id == Notification.user_id)
            .where(User.email == email, Notification.subject == "Confirm your email")
            .order_by(Notification.id.desc())
            .limit(1)
        )
    assert body, f"no confirmation mail to {email}"
    return re.search(r"http://\S+/signup/confirm/\S+", body).group(0)


def first_page(page, base: str) -> None:
    """The only typed address of a journey: the portal's front door."""
    page.goto(base + "/")


def click(page, name: str, role: str = "link") -> None:
    page.get_by_role(role, name=name, exact=True).first.click()


def submit(page, button: str) -> None:
    """Press a form's button and wait for the answer to replace the page (a new
    page, or an htmx swap of the body), before anything else, as a person does."""
    page.evaluate("document.body.firstElementChild.dataset.answered = 'no'")
    click(page, button, "button")
    page.locator("body > :first-child:not([data-answered])").wait_for(state="attached")
    # ...and for htmx to finish settling the new content (its forms are boosted then).
    # A locator, not wait_for_function("..."): polling a string predicate evals it in the page,
    # which the CSP (no 'unsafe-eval') refuses whenever htmx is still busy on the first check.
    page.locator(".htmx-request, .htmx-swapping, .htmx-settling").first.wait_for(state="detached")


def log_in(page, base: str, email: str, password: str) -> None:
    """From the front door, by clicking, as a returning customer does."""
    first_page(page, base)
    click(page, "Log in")
    page.get_by_role("heading", name="Log in").wait_for()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    submit(page, "Log in")
