"""Every form's error path, with JavaScript on and off: the message a person should read is visible.

htmx 2 swaps no 4xx answer by default, so a form that only works without
JavaScript looks dead to every real customer. Each case starts at the front
door and reaches its form by clicking.
"""

import itertools

import pytest

from tests.browser.conftest import click, first_page, log_in, shot, submit

pytestmark = pytest.mark.browser
JS = pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
_emails = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_emails)}@example.com"


def expect_error(page, message: str, name: str) -> None:
    """The message is on screen, inside the form, on a whole page (top bar included)."""
    error = page.locator("form .error, form small.error").filter(has_text=message).first
    error.wait_for(state="visible")
    assert page.locator("header.topbar").count() == 1
    shot(page, name)


def open_sign_up(page, base):
    first_page(page, base)
    click(page, "Sign up")
    page.get_by_role("heading", name="Create your account").wait_for()


def fill_sign_up(page, email="", password="", confirm=None):
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat password").fill(password if confirm is None else confirm)
    click(page, "Create account", "button")


@JS
@pytest.mark.parametrize(
    "case, fields, message",
    [
        ("empty", dict(), "This field is required."),
        ("short", dict(email="x@example.com", password="short"), "Use at least 8 characters."),
        (
            "mismatch",
            dict(email="x@example.com", password="a long password", confirm="another one"),
            "The two passwords differ.",
        ),
        ("bad-email", dict(email="not-an-email", password="a long password"), "Invalid email address."),
    ],
)
def test_sign_up_errors(served, open_page, js, case, fields, message):
    _, base = served
    page = open_page(js=js)
    open_sign_up(page, base)
    fill_sign_up(page, **fields)
    expect_error(page, message, f"form-signup-{case}-{'js' if js else 'nojs'}")
    assert page.get_by_role("heading", name="Create your account").is_visible()


@JS
def test_sign_up_with_a_taken_email_answers_as_for_a_new_one(served, open_page, make_customer, js):
    """Issue 12 item 4: no "already exists"; the owner is told by mail instead."""
    _, base = served
    email, _ = make_customer(unique("taken"))
    page = open_page(js=js)
    open_sign_up(page, base)
    fill_sign_up(page, email=email.upper(), password="a long password")
    page.get_by_role("heading", name="Log in").wait_for()
    assert f"open the link we emailed to {email}" in page.inner_text("#flashes")
    shot(page, f"form-signup-taken-{'js' if js else 'nojs'}")


@JS
@pytest.mark.parametrize("case", ["wrong-password", "unknown-email"])
def test_log_in_errors(served, open_page, make_customer, js, case):
    _, base = served
    email, _ = make_customer(unique("login"))
    page = open_page(js=js)
    log_in(page, base, email if case == "wrong-password" else unique("nobody"), "not the password")
    expect_error(page, "Email or password is wrong.", f"form-login-{case}-{'js' if js else 'nojs'}")
    assert page.get_by_role("heading", name="Log in").is_visible()


@JS
def test_log_in_lock_out_is_explained(served, open_page, make_customer, js):
    app, base = served
    email, password = make_customer(unique("locked"))
    page = open_page(js=js)
    log_in(page, base, email, "not the password")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        page.get_by_label("Password").fill("not the password")
        submit(page, "Log in")
    page.get_by_label("Password").fill(password)  # even the right one, while locked
    click(page, "Log in", "button")
    expect_error(page, "Too many failed attempts", f"form-login-locked-{'js' if js else 'nojs'}")


@JS
def test_api_token_without_a_name(served, open_page, make_customer, js):
    _, base = served
    email, password = make_customer(unique("token"))
    page = open_page(js=js)
    log_in(page, base, email, password)
    click(page, "API tokens")
    page.get_by_role("heading", name="API tokens").wait_for()
    click(page, "Create token", "button")
    expect_error(page, "This field is required.", f"form-token-empty-{'js' if js else 'nojs'}")


@JS
def test_change_password_with_a_wrong_current_password(served, open_page, make_customer, js):
    _, base = served
    email, password = make_customer(unique("password"))
    page = open_page(js=js)
    log_in(page, base, email, password)
    click(page, "Change password")
    page.get_by_role("heading", name="Change your password").wait_for()
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill("a new long password")
    page.get_by_label("Repeat password").fill("a new long password")
    click(page, "Change password", "button")
    expect_error(page, "That is not your current password.", f"form-password-wrong-{'js' if js else 'nojs'}")


@JS
def test_set_password_link_request_with_a_bad_email(served, open_page, js):
    _, base = served
    page = open_page(js=js)
    first_page(page, base)
    click(page, "Log in")
    click(page, "Forgot your password, or never set one?")
    page.get_by_role("heading", name="Set a password").wait_for()
    page.get_by_label("Email").fill("not-an-email")
    click(page, "Email me a link", "button")
    expect_error(page, "Invalid email address.", f"form-link-bad-{'js' if js else 'nojs'}")
