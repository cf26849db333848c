"""Key pages 390 px wide, as on a phone: nothing overflows, the top bar stays tidy, every figure is labelled."""

import re

import pytest

from tests.browser.conftest import click, log_in, shot

pytestmark = pytest.mark.browser

NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
# The top bar: the brand, then one row of links (it scrolls sideways rather than wrap).
NAV_ROWS = """() => new Set([...document.querySelectorAll('.topbar nav > a')]
                    .map(e => { const r = e.getBoundingClientRect(); return Math.round((r.top + r.bottom) / 2 / 8); })).size"""  # noqa: E501
# Every link and button of the top bar is on the screen, none scrolled or pushed out of sight.
OFF_SCREEN = """() => [...document.querySelectorAll('.topbar a, .topbar button')]
    .filter(e => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > window.innerWidth; })
    .map(e => e.textContent.trim())"""
# Every figure in a stacked table says what it is: its label is drawn before it.
UNLABELLED = """() => [...document.querySelectorAll('table.stack tbody td, table.stack tfoot td')]
    .filter(td => td.textContent.trim() && !td.querySelector('form'))
    .filter(td => !td.dataset.label || getComputedStyle(td, '::before').content !== JSON.stringify(td.dataset.label))
    .map(td => td.textContent.trim())"""


def check(page, name: str) -> None:
    shot(page, f"phone-{name}")
    assert page.evaluate(NO_OVERFLOW), f"{name}: wider than the phone"
    assert page.evaluate(NAV_ROWS) == 1, f"{name}: the top bar wraps"
    assert page.evaluate(OFF_SCREEN) == [], f"{name}: top-bar items off the screen"
    assert page.evaluate(UNLABELLED) == [], f"{name}: unlabelled figures"


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_key_pages_on_a_phone(served, open_page, make_customer, js):
    _, base = served
    email, password = make_customer(f"phone-{'js' if js else 'nojs'}@example.com", plan="pro")
    page = open_page(js=js, phone=True)
    page.goto(base + "/")
    check(page, "pricing")
    log_in(page, base, email, password)
    page.get_by_role("heading", name="Your account").wait_for()
    check(page, "account")
    click(page, "Invoices")
    page.get_by_role("heading", name="Invoices").wait_for()
    check(page, "invoices")
    assert page.locator("#invoices td[data-label=Issued]").first.is_visible()
    page.locator("#invoices a.nowrap").first.click()
    page.wait_for_url(re.compile(r".*/invoices/\d+$"))
    page.locator("table.lines").wait_for()
    check(page, "invoice")
    labels = page.evaluate(
        "[...document.querySelectorAll('table.lines tbody td')].map(td => getComputedStyle(td, '::before').content)"
    )
    # (No tax rate applies to this customer: no Tax column, no "Tax 0 %" row.)
    assert labels == ['"Description"', '"Period"', '"Quantity"', '"Unit price"', '"Amount"']
    # The invoice number stays on one line.
    heading = page.locator("h1").bounding_box()
    assert heading["height"] < 60
