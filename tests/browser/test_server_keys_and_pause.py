"""Pages changed for server keys, paused collection and plan features, reached by clicking,
with JavaScript on and off and on a phone."""

import re

import pytest
from sqlalchemy import select

from portal.billing.subscriptions import pause
from portal.extensions import db
from portal.models import Subscription, User, utcnow
from tests.browser.conftest import STAFF, click, first_page, log_in, shot

pytestmark = pytest.mark.browser
JS = pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])


def paused_customer(app, make_customer, email):
    email, password = make_customer(email, plan="pro")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        pause(db.session, db.session.scalar(select(Subscription).where(Subscription.user_id == user.id)), utcnow())
        db.session.commit()
    return email, password


@JS
@pytest.mark.parametrize("phone", [False, True], ids=["wide", "phone"])
def test_a_paused_customer_sees_it_and_resumes_payments(served, open_page, make_customer, js, phone):
    app, base = served
    email, password = paused_customer(app, make_customer, f"paused-{js}-{phone}@example.com".lower())
    page = open_page(js=js, phone=phone)
    log_in(page, base, email, password)
    page.get_by_role("heading", name="Your account").wait_for()
    panel = page.locator("#subscription")
    assert "Paused" in panel.inner_text() and "no invoices until you resume" in panel.inner_text()
    shot(page, f"account-paused-{'js' if js else 'nojs'}-{'phone' if phone else 'wide'}")
    click(page, "Resume payments", "button")  # with JavaScript, htmx swaps the panel in place
    page.get_by_text("Payments resume").wait_for()
    assert page.get_by_role("button", name="Resume payments").count() == 0
    shot(page, f"account-unpaused-{'js' if js else 'nojs'}-{'phone' if phone else 'wide'}")


@pytest.mark.parametrize("phone", [False, True], ids=["wide", "phone"])
def test_pricing_lists_the_features(served, open_page, phone):
    _, base = served
    page = open_page(phone=phone)
    first_page(page, base)
    click(page, "Pricing")
    pro = page.locator("article.plan.featured")  # Pro, "Most popular"
    assert "Seats: 10" in pro.inner_text() and "Priority support" in pro.inner_text()
    shot(page, f"pricing-features-{'phone' if phone else 'wide'}")


@JS
def test_staff_create_a_key_by_clicking_and_see_it_once(served, open_page, js):
    _, base = served
    staff = open_page(js=js)
    staff.set_viewport_size({"width": 1300, "height": 900})
    log_in(staff, base, *STAFF)
    staff.wait_for_url(f"{base}/admin/")
    staff.locator("nav").get_by_role("link", name="Server keys", exact=True).click()
    staff.get_by_role("link", name=re.compile("Create")).first.click()
    staff.get_by_role("heading", name="New server key").wait_for()
    click(staff, "Create key", "button")  # no name: the form says what is missing
    staff.get_by_text("Name the key after the program that uses it.").wait_for()
    shot(staff, f"admin-server-key-error-{'js' if js else 'nojs'}")
    staff.get_by_label("Name").fill(f"CRM {js}")
    staff.get_by_label("Scope").select_option("write")
    click(staff, "Create key", "button")
    secret = staff.get_by_label(re.compile("Key")).input_value()
    assert secret.startswith("sbk_")
    shot(staff, f"admin-server-key-created-{'js' if js else 'nojs'}")
    click(staff, "Back to server keys")
    staff.get_by_role("cell", name=f"CRM {js}", exact=True).wait_for()
    listing = staff.inner_text("body")
    assert f"CRM {js}" in listing and secret not in listing
