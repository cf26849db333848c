"""What hurried or interrupted customers do: double clicks, a second tab, no JavaScript."""

import re

import pytest

from tests.browser.conftest import click, log_in, shot

pytestmark = pytest.mark.browser


def test_a_double_click_on_confirm_subscribes_once_and_says_so_once(served, open_page, make_customer):
    _, base = served
    email, password = make_customer("double@example.com")
    page = open_page()
    log_in(page, base, email, password)
    click(page, "Pricing")
    click(page, "Choose Pro")
    page.get_by_role("button", name="Confirm and subscribe to Pro").dblclick()
    page.get_by_role("heading", name="Your account").wait_for()
    page.get_by_role("button", name="Pay $29.00").wait_for()
    flashes = page.locator(".flash").all_inner_texts()
    assert len(flashes) == 1 and flashes[0].startswith("You are subscribed to Pro"), flashes
    # ...and a double click on the checkout's Pay ends on the thank-you page, not "already paid".
    click(page, "Pay $29.00", "button")
    page.wait_for_url(re.compile(r".*/demo/checkout/.*"))
    page.get_by_role("button", name="Pay $29.00").dblclick()
    page.get_by_text("is paid").first.wait_for()
    assert "already paid" not in page.inner_text("main")


def test_a_click_in_a_tab_whose_session_ended_leads_to_log_in_as_a_whole_page(served, open_page, make_customer):
    _, base = served
    email, password = make_customer("twotabs@example.com", plan="basic")
    page = open_page()
    log_in(page, base, email, password)
    click(page, "Invoices")
    page.get_by_role("heading", name="Invoices").wait_for()
    other = page.context.new_page()
    other.goto(base + "/account")
    other.get_by_role("button", name="Log out").click()
    other.get_by_text("You are logged out").wait_for()
    click(page, "Paid")  # an htmx fragment request, answered by the log-in page
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.locator("header.topbar").count() == 1 and page.locator("#invoices").count() == 0
    shot(page, "session-ended-filter")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    click(page, "Log in", "button")
    page.wait_for_url(re.compile(r".*/invoices(\?status=paid)?$"))  # back where the click was made


def test_without_javascript_there_is_no_dead_copy_button(served, open_page, make_customer):
    _, base = served
    email, password = make_customer("nocopy@example.com")
    page = open_page(js=False)
    log_in(page, base, email, password)
    click(page, "API tokens")
    page.get_by_label("Name").fill("ci")
    click(page, "Create token", "button")
    page.get_by_role("heading", name="Your new token").wait_for()
    assert not page.locator("button[data-copy]").is_visible()
