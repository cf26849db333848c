"""Monthly to yearly by clicking, with JavaScript on and off, on a phone: the preview shows
the year's price less the unused month before anything changes, then the invoice to pay."""

import re

import pytest

from tests.browser.conftest import click, log_in, shot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_monthly_to_yearly_by_clicking(served, open_page, make_customer, js):
    _, base = served
    name = f"yearly-{'js' if js else 'nojs'}"
    email, password = make_customer(f"{name}@example.com", plan="pro")
    page = open_page(js=js, phone=True)
    log_in(page, base, email, password)
    page.get_by_role("heading", name="Your account").wait_for()
    assert "$29.00 / month" in page.inner_text("#subscription")

    # The error path first: choosing the plan you are on says so, with or without JavaScript.
    page.select_option("#plan-select", "pro")
    click(page, "Change plan…", "button")
    page.get_by_text("You are already on the Pro plan.").first.wait_for()

    page.get_by_role("heading", name="Your account").wait_for()
    page.select_option("#plan-select", "pro-yearly")
    if not js:
        click(page, "Change plan…", "button")
        page.get_by_role("heading", name="Change plan").wait_for()
    page.get_by_text("yearly billing for Pro starts today").wait_for()
    preview = page.inner_text("#change-preview-body")
    assert re.search(r"yearly billing for Pro starts today", preview), preview
    assert "$290.00" in preview and "unused part of this period" in preview, preview
    due = re.search(r"Invoiced today: (\$\d[\d,]*\.\d\d)", preview).group(1)
    shot(page, f"{name}-preview-phone")
    click(page, "Confirm change to Pro", "button")
    page.get_by_text("You are now on Pro, billed yearly").wait_for()
    assert due in page.inner_text("main")
    assert "$290.00 / year" in page.inner_text("#subscription")
    page.get_by_role("button", name=f"Pay {due}").wait_for()
    shot(page, f"{name}-changed-phone")
