"""Promotion codes in the browser: reached by clicking from the front door; a bad code is a
form error with JavaScript on and off; Apply shows the new price before confirming; on a phone."""

import itertools
from decimal import Decimal

import pytest

from tests.browser.conftest import click, log_in, shot, submit

pytestmark = pytest.mark.browser
_emails = itertools.count(1)


@pytest.fixture(scope="module")
def codes(served):
    from portal.extensions import db
    from portal.models import Coupon, PromotionCode

    app, _ = served
    with app.app_context():
        coupon = Coupon(name="Launch 20 %", percent_off=Decimal(20), duration="repeating", duration_periods=3)
        db.session.add_all(
            [PromotionCode(coupon=coupon, code="LAUNCH"), PromotionCode(coupon=coupon, code="PAUSED", active=False)]
        )
        db.session.commit()


def mode(js: bool) -> str:
    return "js" if js else "nojs"


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_bad_code_at_sign_up_says_why_then_a_good_one_discounts(served, codes, open_page, make_customer, js):
    _, base = served
    email, password = make_customer(f"coupon-{next(_emails)}@example.com")
    page = open_page(js=js)
    log_in(page, base, email, password)
    click(page, "See plans")
    click(page, "Choose Pro")
    page.get_by_role("heading", name="Pro").wait_for()
    page.get_by_label("Promotion code (optional)").fill("paused")
    submit(page, "Confirm and subscribe to Pro")
    page.locator("form small.error").filter(has_text="This code is not available at the moment.").wait_for()
    shot(page, f"coupon-error-{mode(js)}")
    page.get_by_label("Promotion code (optional)").fill("nope")
    submit(page, "Confirm and subscribe to Pro")
    page.locator("form small.error").filter(has_text="This code does not exist.").wait_for()
    page.get_by_label("Promotion code (optional)").fill("launch")
    if js:  # htmx swaps the summary in place
        click(page, "Apply code", "button")
    else:
        submit(page, "Apply code")
    page.locator("#discount").filter(has_text="\u2212$5.80").wait_for()
    assert "$23.20" in page.inner_text("#due-today")
    assert page.locator("form small.error").count() == 0
    shot(page, f"coupon-preview-{mode(js)}")
    submit(page, "Confirm and subscribe to Pro")
    page.locator("#flashes").filter(has_text="You are subscribed to Pro").wait_for()
    click(page, "Invoices")
    page.get_by_role("heading", name="Invoices").first.wait_for()
    page.get_by_role("link", name="INV-").first.click()
    page.get_by_role("heading", name="INV-").first.wait_for()
    text = page.inner_text("main")
    assert "Discount: Launch 20 %" in text and "-$5.80" in text and "$23.20" in text
    shot(page, f"coupon-invoice-{mode(js)}")


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_code_on_the_account_page(served, codes, open_page, make_customer, js):
    _, base = served
    email, password = make_customer(f"account-{next(_emails)}@example.com", plan="basic")
    page = open_page(js=js)
    log_in(page, base, email, password)
    click(page, "Have a promotion code?")
    page.get_by_role("heading", name="Promotion code").wait_for()
    page.get_by_label("Promotion code").fill("NOPE")
    submit(page, "Apply code")
    page.locator("form small.error").filter(has_text="This code does not exist.").wait_for()
    page.get_by_label("Promotion code").fill("launch")
    submit(page, "See the new price")
    page.locator("#discounted").filter(has_text="$7.20").wait_for()
    submit(page, "Apply code")
    page.locator("#flashes").filter(has_text="Code LAUNCH applied").wait_for()
    shot(page, f"coupon-account-{mode(js)}")


def test_the_subscribe_page_with_a_code_on_a_phone(served, codes, open_page, make_customer):
    _, base = served
    email, password = make_customer(f"phone-{next(_emails)}@example.com")
    page = open_page(phone=True)
    log_in(page, base, email, password)
    click(page, "See plans")
    click(page, "Choose Enterprise")
    page.get_by_label("Promotion code (optional)").fill("paused")
    submit(page, "Confirm and subscribe to Enterprise")
    page.locator("form small.error").first.wait_for(state="visible")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
    shot(page, "coupon-phone")
