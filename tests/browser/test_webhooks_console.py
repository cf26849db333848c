"""Staff register a webhook endpoint, see its secret once, send a test event and see it
delivered to a receiver on loopback, all by clicking; the form's error path with
JavaScript on and off, and the pages on a phone."""

from __future__ import annotations

import re

import pytest

from portal.app import create_app
from portal.billing.catalog import seed_plans
from portal.extensions import db
from portal.jobs import context, tasks
from portal.models import utcnow
from portal.users import create_staff
from tests.browser.conftest import STAFF, click, log_in, shot, submit
from tests.conftest import TEST_CONFIG
from tests.live_server import gunicorn
from tests.test_webhooks import Receiver


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app under gunicorn, endpoints on loopback allowed (as in development)."""
    from flask_migrate import upgrade

    folder = tmp_path_factory.mktemp("browser-webhooks")
    url = f"sqlite:///{folder / 'app.db'}"
    config = {**TEST_CONFIG, "WTF_CSRF_ENABLED": True, "TESTING": False, "SQLALCHEMY_DATABASE_URI": url}
    app = create_app({**config, "WEBHOOKS_ALLOW_PRIVATE_URLS": True, "WEBHOOKS_TIMEOUT": 2})
    with app.app_context():
        upgrade()
        seed_plans(db.session)
        create_staff(db.session, *STAFF, utcnow())
        db.session.commit()
    with gunicorn(url, folder / "instance", WEBHOOKS_ALLOW_PRIVATE_URLS="1") as base:
        yield app, base


@pytest.fixture()
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def open_webhooks(page, base, phone: bool = False):
    log_in(page, base, *STAFF)
    page.wait_for_url(f"{base}/admin/")
    if phone:  # the console's menu folds behind its toggle on a narrow screen
        page.locator("nav .navbar-toggler").click()
        page.locator("nav .navbar-collapse.show").wait_for()  # unfolded: its animation is over
    page.locator("nav").get_by_role("link", name="Outbound webhooks").click()
    page.get_by_role("heading", name="Outbound webhooks").wait_for()


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_bad_url_is_refused_with_its_reason(served, open_page, js):
    _, base = served
    page = open_page(js=js)
    open_webhooks(page, base)
    click(page, "Add endpoint")
    page.get_by_label("URL").fill("ftp://files.example.com/drop")
    submit(page, "Add endpoint")
    page.get_by_text("The URL must start with http:// or https://.").wait_for()
    assert page.get_by_label("URL").input_value() == "ftp://files.example.com/drop"  # kept to correct
    shot(page, f"webhooks-form-error-{'js' if js else 'nojs'}")


def test_register_send_a_test_event_and_see_it_delivered(served, open_page, receiver):
    app, base = served
    page = open_page()
    open_webhooks(page, base)
    click(page, "Add endpoint")
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Our application")
    submit(page, "Add endpoint")
    secret = page.inner_text("#secret").strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{32}", secret)
    shot(page, "webhooks-secret-once")
    receiver.secret = secret
    click(page, "Done")
    page.get_by_role("heading", name=receiver.url).wait_for()
    assert secret not in page.content()
    submit(page, "Send a test event")
    page.get_by_text("Test event queued").wait_for()

    context.use_app(app)  # gunicorn runs no worker here: this process does the worker's job
    assert tasks.deliver_webhooks()["sent"] == 1
    assert receiver.types() == ["webhook.test"] and receiver.bad_signatures == 0

    page.locator("nav").get_by_role("link", name="Outbound webhooks").click()
    page.get_by_role("link", name=receiver.url).click()
    page.get_by_text("Delivered").first.wait_for()
    shot(page, "webhooks-endpoint")
    page.get_by_role("link", name="webhook.test").click()
    page.get_by_text("HTTP 204").wait_for()
    shot(page, "webhooks-delivery")
    submit(page, "Resend now")
    page.get_by_text("will be sent again now").wait_for()


def test_the_pages_fit_a_phone(served, open_page):
    _, base = served
    page = open_page(phone=True)
    open_webhooks(page, base, phone=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the list is {width}px wide on a 390px phone"
    shot(page, "webhooks-phone-list")
    click(page, "Add endpoint")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "webhooks-phone-form")
