"""Saving a card and automatic collection in a real browser, by clicking: a card that
declines, the failure and the retry date, then a good card that pays the invoice."""

import datetime as dt

import pytest

from tests.browser.conftest import click, log_in, shot, submit

pytestmark = pytest.mark.browser


def type_card(page, number: str, month: str = "12", year: str = "2034") -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month").fill(month)
    page.get_by_label("Expiry year").fill(year)
    submit(page, "Save card")


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_declining_card_then_a_good_one_pays_the_invoice(served, open_page, make_customer, js):
    _, base = served
    name = "js" if js else "nojs"
    email, password = make_customer(f"card-{name}@example.com", plan="pro")
    page = open_page(js=js)
    log_in(page, base, email, password)
    assert "No card saved" in page.inner_text("#payment-method")

    # Add a card: the demo's set-up page, and its error path.
    submit(page, "Add card")
    page.get_by_role("heading", name="Add a card").wait_for()
    type_card(page, "1234 5678 9012 3456")
    assert "use one of Stripe's test cards" in page.inner_text("main")
    shot(page, f"card-{name}-refused")

    # A card that attaches but declines every off-session charge.
    type_card(page, "4000 0000 0000 0341")
    page.get_by_role("heading", name="Your account").wait_for()
    assert "Visa •••• 0341" in page.inner_text("#payment-method")
    assert "The charge of an open invoice failed" in page.inner_text("main")
    link = page.locator("#to-pay").get_by_role("link").first
    number = link.inner_text()
    link.click()
    page.get_by_role("heading", name=number).wait_for()
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    told = page.inner_text("#collection")
    assert "The charge failed: your bank declined the card." in told
    assert f"We will try again on {tomorrow:%b} {tomorrow.day}, {tomorrow.year}." in told
    assert page.get_by_role("button", name="Pay now $29.00").is_visible()
    shot(page, f"card-{name}-declined")

    # Update the card from the invoice: the good card pays it at once.
    submit(page, "Update card")
    page.get_by_role("heading", name="Add a card").wait_for()
    type_card(page, "4242 4242 4242 4242")
    page.get_by_role("heading", name="Your account").wait_for()
    assert "Visa •••• 4242" in page.inner_text("#payment-method")
    assert "1 open invoice(s) paid with it now" in page.inner_text("main")
    click(page, "Invoices")
    click(page, number)
    page.get_by_role("heading", name=number).wait_for()
    assert "Paid" in page.inner_text("#invoice-status")
    assert "Paid with the saved card" in page.inner_text("#collection")
    shot(page, f"card-{name}-paid")


def test_the_account_page_with_a_card_on_a_phone(served, open_page, make_customer):
    _, base = served
    email, password = make_customer("card-phone@example.com", plan="pro")
    page = open_page(phone=True)
    log_in(page, base, email, password)
    submit(page, "Add card")
    type_card(page, "4242 4242 4242 4242")
    page.get_by_role("heading", name="Your account").wait_for()
    section = page.locator("#payment-method")
    assert "Visa •••• 4242" in section.inner_text() and "12/2034" in section.inner_text()
    box = section.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "card-phone-account")
