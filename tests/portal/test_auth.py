import datetime as dt
import re

from sqlalchemy import select

from portal.models import User
from tests.conftest import utc


def signup(client, email="new@example.com", password="long enough", confirm=None):
    return client.post(
        "/signup", data={"name": "New", "email": email, "password": password, "confirm": confirm or password}
    )


def test_sign_up_log_out_and_log_in(client, session, mailbox):
    response = signup(client, email="New@Example.COM")
    assert response.status_code == 303 and response.location == "/login"
    user = session.scalar(select(User).where(User.email == "new@example.com"))
    assert user and user.password_hash.startswith("scrypt:") and user.awaiting_confirmation
    assert client.get("/account").status_code == 302  # not before the emailed link
    link = re.search(r"http://portal\.test(/signup/confirm/\S+)", mailbox()).group(1)
    assert "Confirm and continue" in client.get(link).get_data(as_text=True)
    response = client.post(link)
    assert response.status_code == 303 and response.location == "/pricing"
    assert client.get("/account").status_code == 200
    assert client.post(link).location == "/login"  # used
    assert client.post("/logout").status_code == 303
    assert client.get("/account").status_code == 302
    response = client.post("/login", data={"email": "NEW@example.com", "password": "long enough"})
    assert response.status_code == 303 and response.location == "/account"


def test_signing_up_with_a_taken_email_in_any_case_mails_its_owner(client, make_user, mailbox):
    make_user(email="taken@example.com")
    response = signup(client, email="TAKEN@Example.com")
    assert response.status_code == 303 and response.location == "/login"
    mail = mailbox()
    assert "mail to taken@example.com: You already have an account" in mail
    assert "/set-password/" in mail


def test_bad_signup_input_gets_form_messages(client, session):
    short = signup(client, password="short")
    assert short.status_code == 422 and "Use at least 8 characters." in short.get_data(as_text=True)
    differ = signup(client, password="long enough", confirm="different one")
    assert differ.status_code == 422 and "The two passwords differ." in differ.get_data(as_text=True)
    bad = signup(client, email="not-an-email")
    assert bad.status_code == 422 and "Invalid email address" in bad.get_data(as_text=True)
    assert session.scalar(select(User)) is None


def test_repeated_failures_delay_the_account_for_a_while(client, make_user, config):
    make_user(email="ada@example.com", password="right password")
    moment = [utc(2024, 1, 1, 12)]
    config["CLOCK"] = lambda: moment[0]
    for _ in range(5):
        wrong = client.post("/login", data={"email": "ada@example.com", "password": "wrong"})
        assert wrong.status_code == 401 and "Email or password is wrong." in wrong.get_data(as_text=True)
    locked = client.post("/login", data={"email": "ada@example.com", "password": "right password"})
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "60"
    assert "Too many failed attempts for this email. " in locked.get_data(as_text=True)
    assert "Try again in 1 minute." in locked.get_data(as_text=True)
    moment[0] += dt.timedelta(minutes=2)
    assert client.post("/login", data={"email": "ada@example.com", "password": "right password"}).status_code == 303


def test_login_never_redirects_off_site(client, make_user):
    make_user(email="ada@example.com", password="right password")
    r = client.post("/login?next=//evil.example/x", data={"email": "ada@example.com", "password": "right password"})
    assert r.location == "/account"
    r = client.post("/login?next=/invoices", data={"email": "ada@example.com", "password": "right password"})
    assert r.location == "/invoices"


def test_change_password(client, customer, session):
    wrong = client.post(
        "/password", data={"current": "nope", "password": "brand new pass", "confirm": "brand new pass"}
    )
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    ok = client.post(
        "/password", data={"current": "correct horse", "password": "brand new pass", "confirm": "brand new pass"}
    )
    assert ok.status_code == 303


def test_imported_customer_sets_a_password_from_a_one_time_link(client, make_user, mailbox):
    make_user(email="imported@example.com", password=None)
    client.post("/set-password", data={"email": "imported@example.com"})
    link = re.search(r"http://portal\.test(/set-password/\S+)", mailbox()).group(1)
    assert client.post(link, data={"password": "my new password", "confirm": "my new password"}).status_code == 303
    client.post("/logout")
    assert (
        client.post("/login", data={"email": "imported@example.com", "password": "my new password"}).status_code == 303
    )
    reused = client.post(link, data={"password": "another password", "confirm": "another password"})
    assert reused.location == "/set-password"  # the link worked once


def test_unknown_address_gets_the_same_answer(client, mailbox):
    response = client.post("/set-password", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert "If that address has an account" in response.get_data(as_text=True)
    assert "set-password/" not in mailbox()


def test_forms_without_a_csrf_token_are_rejected(client, make_user, config):
    config["WTF_CSRF_ENABLED"] = True
    make_user(email="ada@example.com", password="right password")
    response = client.post("/login", data={"email": "ada@example.com", "password": "right password"})
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "ada@example.com", "password": "right password", "csrf_token": token}
    )
    assert response.status_code == 303


def test_session_cookie_is_httponly_and_samesite(client, make_user):
    make_user(email="ada@example.com", password="right password")
    response = client.post("/login", data={"email": "ada@example.com", "password": "right password"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
