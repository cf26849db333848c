"""Issue 12, security items: what an outsider or a hostile customer tried."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.web import local_path
from tests.conftest import utc

PASSWORD = "right password"


def log_in(client, next_param: str | None = None, htmx: bool = False, email="ada@example.com"):
    url = "/login" if next_param is None else "/login?next=" + next_param
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={"email": email, "password": PASSWORD}, headers=headers)


# --- item 1: open redirect after log-in -------------------------------------------------

OFF_SITE = [
    "//evil.example",
    "/%09/evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "%5C%5Cevil.example",
    "/%0D/evil.example",
    "/%0A/evil.example",
    "/%0d%0aSet-Cookie:%20x=1",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    "%09//evil.example",
    "/%09%09/evil.example",
    "/\\evil.example",
    "%2F%2Fevil.example",
    "///evil.example",
    " //evil.example",
    "evil.example",
    "/%00/x",
]


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_login_never_sends_the_browser_off_site(client, make_user, target, htmx):
    make_user(email="ada@example.com", password=PASSWORD)
    response = log_in(client, target, htmx=htmx)
    if htmx:
        assert response.status_code == 204
        assert response.headers["HX-Redirect"] == "/account"
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == "/account"


@pytest.mark.parametrize("target", ["/invoices", "/invoices?page=2", "/admin/invoice/?flt0=1#x", "/a/b//c"])
def test_login_follows_a_local_next(client, make_user, target):
    make_user(email="ada@example.com", password=PASSWORD)
    from urllib.parse import quote

    response = log_in(client, quote(target, safe=""))
    assert response.status_code == 303 and response.headers["Location"] == target
    client.post("/logout")
    response = log_in(client, quote(target, safe=""), htmx=True)
    assert response.headers["HX-Redirect"] == target


@pytest.mark.parametrize(
    "target", ["/\t/evil", "/\r\n/x", "\\\\evil", "/\\evil", "//evil", "https://x", "", None, "/ok\x7f", "/ok\x00"]
)
def test_local_path_refuses_what_a_browser_would_take_off_site(target):
    assert local_path(target) is None


def test_staff_login_link_round_trips_through_next(client, make_user):
    make_user(email="ada@example.com", password=PASSWORD, is_staff=True)
    bounce = client.get("/admin/invoice/?flt0_status_equals=overdue")
    assert bounce.status_code == 302
    login_url = bounce.headers["Location"]
    response = client.post(login_url, data={"email": "ada@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/admin/invoice/?flt0_status_equals=overdue"


# --- item 2: log-out and a password change end sessions ---------------------------------


class Browser(FlaskClient):
    """A test client that never reuses the user another client's request loaded.

    The `session` fixture keeps an app context pushed, and Flask reuses it for every
    request, so Flask-Login's cached user (g._login_user) would leak between clients.
    """

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


def new_browser(app) -> Browser:
    return Browser(app, app.response_class, use_cookies=True)


def _browser(app, cookie: str):
    """Another browser that replays a captured session cookie."""
    other = new_browser(app)
    other.set_cookie("session", cookie, domain="localhost")
    return other


def _logged_in(app, email="ada@example.com", password=PASSWORD):
    browser = new_browser(app)
    response = browser.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return browser


def test_a_cookie_captured_before_log_out_opens_nothing_after(app, make_user, session):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    browser = _logged_in(app)
    captured = browser.get_cookie("session").value
    assert _browser(app, captured).get("/account").status_code == 200
    assert _browser(app, captured).get("/api/invoices/").status_code == 200
    assert browser.post("/logout").status_code == 303
    thief = _browser(app, captured)
    assert thief.get("/account").status_code == 302
    assert thief.get("/api/invoices/").status_code == 401
    assert thief.get("/api/invoices/").get_json()["error"]["code"] == "unauthorized"


def test_a_password_change_ends_the_other_sessions_but_not_this_one(app, make_user, session):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    laptop, phone = _logged_in(app), _logged_in(app)
    phone_cookie = phone.get_cookie("session").value
    changed = laptop.post(
        "/password", data={"current": PASSWORD, "password": "a brand new secret", "confirm": "a brand new secret"}
    )
    assert changed.status_code == 303
    assert laptop.get("/account").status_code == 200
    assert phone.get("/account").status_code == 302
    assert _browser(app, phone_cookie).get("/api/invoices/").status_code == 401
    # The new password works on a new browser; the old one does not.
    _logged_in(app, password="a brand new secret")
    assert new_browser(app).post("/login", data={"email": "ada@example.com", "password": PASSWORD}).status_code == 401


def test_a_password_set_from_a_link_ends_every_older_session(app, make_user, session, mailbox):
    import re

    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    stolen = _logged_in(app)
    owner = new_browser(app)
    owner.post("/set-password", data={"email": "ada@example.com"})
    link = re.search(r"http://portal\.test(/set-password/\S+)", mailbox()).group(1)
    assert owner.post(link, data={"password": "taken back at last", "confirm": "taken back at last"}).status_code == 303
    assert owner.get("/account").status_code == 200
    assert stolen.get("/account").status_code == 302


def test_creating_staff_with_a_new_password_ends_old_sessions(app, make_user, session, runner):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    browser = _logged_in(app)
    result = runner.invoke(args=["users", "create-staff", "ada@example.com", "--password", "staff pass 2026!"])
    assert result.exit_code == 0, result.output
    assert browser.get("/account").status_code == 302


def test_a_forged_user_id_without_a_session_row_is_logged_out(client, make_user, session):
    user = make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    with client.session_transaction() as sess:  # what a pre-fix cookie carried
        sess["_user_id"] = str(user.id)
        sess["_fresh"] = True
    assert client.get("/account").status_code == 302


# --- item 3: log-in throttling ------------------------------------------------------------


def _attempt(browser, email, password="wrong password", addr="203.0.113.7"):
    return browser.post("/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": addr})


@pytest.fixture()
def clock(config):
    moment = [utc(2024, 1, 1, 12)]
    config["CLOCK"] = lambda: moment[0]
    return moment


def test_the_delay_grows_with_each_failure_and_then_lifts(app, make_user, session, clock):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    stranger = new_browser(app)
    for _ in range(5):
        assert _attempt(stranger, "ada@example.com").status_code == 401
    for minutes in (2, 4, 8, 15, 15):
        refused = _attempt(stranger, "ada@example.com", PASSWORD)
        assert refused.status_code == 429
        clock[0] += dt.timedelta(seconds=int(refused.headers["Retry-After"]))
        assert _attempt(stranger, "ada@example.com").status_code == 401  # one more guess, then longer
        assert _attempt(stranger, "ada@example.com").headers["Retry-After"] == str(minutes * 60)
    clock[0] += dt.timedelta(minutes=15)
    assert _attempt(stranger, "ada@example.com", PASSWORD).status_code == 303


def test_a_stranger_cannot_lock_the_owner_out_of_a_browser_they_used_before(app, make_user, session, clock):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    owner = new_browser(app)
    assert _attempt(owner, "ada@example.com", PASSWORD, addr="198.51.100.1").status_code == 303
    owner.post("/logout")
    stranger = new_browser(app)
    for _ in range(8):
        _attempt(stranger, "ada@example.com")
    assert _attempt(stranger, "ada@example.com", PASSWORD).status_code == 429
    assert _attempt(new_browser(app), "ada@example.com", PASSWORD).status_code == 429
    assert _attempt(owner, "ada@example.com", PASSWORD, addr="198.51.100.1").status_code == 303


def test_the_set_password_link_lifts_the_delay(app, make_user, session, clock, mailbox):
    import re

    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    stranger = new_browser(app)
    for _ in range(7):
        _attempt(stranger, "ada@example.com")
    owner = new_browser(app)
    owner.post("/set-password", data={"email": "ada@example.com"})
    link = re.search(r"http://portal\.test(/set-password/\S+)", mailbox()).group(1)
    assert owner.post(link, data={"password": "my own again 42", "confirm": "my own again 42"}).status_code == 303
    owner.post("/logout")
    assert _attempt(new_browser(app), "ada@example.com", "my own again 42").status_code == 303


def test_one_address_is_limited_across_many_accounts(app, make_user, session, clock, config):
    config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 6
    for i in range(8):
        make_user(email=f"user{i}@example.com", password=PASSWORD)
    session.commit()
    spray = new_browser(app)
    answers = [_attempt(spray, f"user{i}@example.com").status_code for i in range(8)]
    assert answers == [401] * 6 + [429] * 2
    refused = _attempt(spray, "user0@example.com", PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed log-ins from your network. Try again in 1 minute." in refused.get_data(as_text=True)
    # Another address is not affected; and successes do not use up the address's allowance.
    other = new_browser(app)
    for _ in range(10):
        assert _attempt(other, "user7@example.com", PASSWORD, addr="192.0.2.9").status_code == 303
        other.post("/logout")
    clock[0] += dt.timedelta(minutes=2)
    assert _attempt(spray, "user0@example.com", PASSWORD).status_code == 303


def test_ipv6_clients_are_counted_per_64_block():
    from portal.auth.throttle import address_key

    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "addr:2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "addr:192.0.2.1"
    assert address_key(None) == address_key("bogus") == "addr:unknown"


# --- item 4: user enumeration ------------------------------------------------------------


def _sign_up(browser, email, password="a long password"):
    return browser.post("/signup", data={"name": "X", "email": email, "password": password, "confirm": password})


def test_sign_up_answers_the_same_for_a_taken_and_a_new_email(app, make_user, session, mailbox):
    make_user(email="taken@example.com", password=PASSWORD)
    session.commit()
    answers = []
    for email in ("taken@example.com", "fresh@example.com"):
        browser = new_browser(app)
        response = _sign_up(browser, email)
        page = browser.get(response.headers["Location"])
        answers.append(
            (
                response.status_code,
                response.headers["Location"],
                page.status_code,
                page.get_data(as_text=True).replace(email, "EMAIL"),
                browser.get("/account").status_code,
            )
        )
    assert answers[0] == answers[1]
    assert answers[0][0] == 303 and answers[0][4] == 302
    # Nor does logging in with the password given at sign-up tell them apart.
    logins = [
        _attempt(new_browser(app), email, "a long password", addr=f"192.0.2.{i}")
        for i, email in enumerate(("taken@example.com", "fresh@example.com"))
    ]
    assert [r.status_code for r in logins] == [401, 401]
    assert logins[0].get_data(as_text=True).replace("taken", "X") == logins[1].get_data(as_text=True).replace(
        "fresh", "X"
    )
    mails = mailbox()
    assert "mail to taken@example.com: You already have an account" in mails
    # The log-in would mail the link again, but not within ten minutes of the last one.
    assert mails.count("mail to fresh@example.com: Confirm your email") == 1


def test_a_squatted_sign_up_does_not_keep_the_owner_out(app, session, mailbox):
    import re

    _sign_up(new_browser(app), "victim@example.com", "the squatter's pass")
    mailbox()
    owner = new_browser(app)
    _sign_up(owner, "victim@example.com", "the owner's own pass")
    link = re.search(r"http://portal\.test(/set-password/\S+)", mailbox()).group(1)
    assert (
        owner.post(link, data={"password": "the owner's own pass", "confirm": "the owner's own pass"}).status_code
        == 303
    )
    assert owner.get("/account").status_code == 200
    assert _attempt(new_browser(app), "victim@example.com", "the squatter's pass").status_code == 401


def test_a_mail_scanner_following_the_link_logs_nobody_in(app, session, mailbox):
    import re

    _sign_up(new_browser(app), "new@example.com")
    link = re.search(r"http://portal\.test(/signup/confirm/\S+)", mailbox()).group(1)
    scanner = new_browser(app)
    assert scanner.get(link).status_code == 200
    assert scanner.get("/account").status_code == 302


def test_unknown_emails_get_a_password_hash_checked_too(app, make_user, session, monkeypatch):
    """Log-in takes as long for an unknown email as for a real one (bench/login_timing.py)."""
    from portal.auth import views

    make_user(email="ada@example.com", password=PASSWORD)
    make_user(email="imported@example.com", password=None)
    session.commit()
    checked = []
    real_check = views.check_password_hash
    monkeypatch.setattr(
        views,
        "check_password_hash",
        lambda stored, given: checked.append(stored.split("$")[0]) or real_check(stored, given),
    )
    for email in ("ada@example.com", "nobody@example.com", "imported@example.com"):
        assert _attempt(new_browser(app), email).status_code == 401
    assert checked == ["scrypt:32768:8:1"] * 3


def test_the_429_is_the_same_for_real_and_unknown_accounts(app, make_user, session, clock):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        browser = new_browser(app)
        for _ in range(5):
            assert _attempt(browser, email, addr="192.0.2.1").status_code == 401
        refused = _attempt(browser, email, addr="192.0.2.1")
        answers.append(
            (
                refused.status_code,
                refused.headers["Retry-After"],
                refused.get_data(as_text=True).replace(email, "EMAIL"),
            )
        )
    assert answers[0] == answers[1] and answers[0][0] == 429


# --- item 6: common and breached-looking passwords ---------------------------------------

WEAK = [
    "12345678",
    "password",
    "Password123!",
    "P@ssw0rd",
    "qwertyuiop",
    "iloveyou123",
    "monkey12",
    "11111111",
    "abcdefgh",
]


@pytest.mark.parametrize("weak", WEAK)
def test_sign_up_refuses_a_common_password(client, session, weak):
    from sqlalchemy import select

    from portal.models import User

    response = _sign_up(client, "new@example.com", weak)
    assert response.status_code == 422
    assert "This password is too common or easy to guess." in response.get_data(as_text=True)
    assert session.scalar(select(User)) is None


def test_a_password_made_of_the_email_is_refused(client, session):
    response = _sign_up(client, "grace.hopper@example.com", "gracehopper")
    assert response.status_code == 422 and "too common or easy to guess" in response.get_data(as_text=True)


def test_change_and_set_password_refuse_common_ones(app, client, make_user, session, mailbox):
    import re

    from tests.conftest import login

    user = make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    login(client, user)
    changed = client.post(
        "/password", data={"current": PASSWORD, "password": "Password123!", "confirm": "Password123!"}
    )
    assert changed.status_code == 422 and "too common or easy to guess" in changed.get_data(as_text=True)
    other = new_browser(app)
    other.post("/set-password", data={"email": "ada@example.com"})
    link = re.search(r"http://portal\.test(/set-password/\S+)", mailbox()).group(1)
    refused = other.post(link, data={"password": "letmein!", "confirm": "letmein!"})
    assert refused.status_code == 422 and "too common or easy to guess" in refused.get_data(as_text=True)
    assert (
        other.post(link, data={"password": "orbit lantern pickle", "confirm": "orbit lantern pickle"}).status_code
        == 303
    )


def test_staff_creation_refuses_a_common_password(runner, session):
    result = runner.invoke(args=["users", "create-staff", "boss@example.com", "--password", "password1"])
    assert result.exit_code == 2 and "too common or easy to guess" in result.output
    assert (
        runner.invoke(
            args=["users", "create-staff", "boss@example.com", "--password", "orbit lantern pickle"]
        ).exit_code
        == 0
    )


def test_old_counters_are_forgotten_but_not_live_locks(app, make_user, session, clock):
    from sqlalchemy import func, select

    from portal.models import LoginThrottle

    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    for i in range(3):
        _attempt(new_browser(app), f"gone{i}@example.com", addr=f"192.0.2.{i}")
    clock[0] += dt.timedelta(days=2)
    for _ in range(5):
        _attempt(new_browser(app), "locked@example.com", addr="198.51.100.7")
    assert _attempt(new_browser(app), "ada@example.com", PASSWORD, addr="198.51.100.9").status_code == 303
    keys = session.scalars(select(LoginThrottle.key)).all()
    assert len(keys) == 3 and not any(k.startswith("addr:192.0.2.") for k in keys)
    assert (
        session.scalar(select(func.count()).select_from(LoginThrottle).where(LoginThrottle.locked_until.is_not(None)))
        == 1
    )


def test_account_mails_leave_through_the_outbox_so_a_dead_mail_server_tells_nothing(
    client, make_user, session, config, mailbox
):
    """With the mail server down, known and unknown addresses get the same answer, never a 500."""
    from tests.live_server import free_port

    config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())  # nothing listens there
    make_user(email="known@example.com", password=PASSWORD)
    session.commit()
    answers = [
        client.post("/set-password", data={"email": email}) for email in ("known@example.com", "nobody@example.com")
    ]
    answers += [_sign_up(client, email) for email in ("known@example.com", "new@example.com")]
    assert [(r.status_code, r.location) for r in answers] == [(303, "/login")] * 4
    mails = mailbox()
    assert "mail to known@example.com: Set your password" in mails
    assert "mail to known@example.com: You already have an account" in mails
    assert "mail to new@example.com: Confirm your email" in mails and "nobody@" not in mails


def test_posting_a_form_again_and_again_mails_an_address_once(client, make_user, session, mailbox, clock):
    make_user(email="target@example.com", password=PASSWORD)
    session.commit()
    for _ in range(15):
        assert client.post("/set-password", data={"email": "target@example.com"}).status_code == 303
        assert _sign_up(client, "target@example.com").status_code == 303
    mails = mailbox()
    assert mails.count("Set your password") == 1 and mails.count("You already have an account") == 1
    clock[0] += dt.timedelta(minutes=11)  # later, a real request gets its mail
    client.post("/set-password", data={"email": "target@example.com"})
    assert mailbox().count("Set your password") == 1


def test_a_sent_account_mail_keeps_no_link_in_the_outbox(app, make_user, session, mailbox):
    from portal.models import NOTE_ACCOUNT, Notification, utcnow
    from portal.notify.outbox import deliver_pending

    class Collect:
        sent = []

        def send(self, to, subject, body, html=None, attachments=()):
            self.sent.append(body)

        def batch(self):
            import contextlib

            return contextlib.nullcontext()

    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    new_browser(app).post("/set-password", data={"email": "ada@example.com"})
    sender = Collect()
    assert deliver_pending(session, sender, utcnow()) == 1
    session.commit()
    assert "/set-password/" in sender.sent[0]
    note = session.scalar(select(Notification).where(Notification.kind == NOTE_ACCOUNT))
    assert note.sent_at is not None and "/set-password/" not in note.body


def test_an_htmx_log_in_with_a_non_ascii_next_redirects_with_an_ascii_header(client, make_user, session):
    make_user(email="ada@example.com", password=PASSWORD)
    session.commit()
    for target in ("/%E3%80%80/evil.example", "/%EF%BC%8Fevil.example", "/caf%C3%A9"):
        response = log_in(client, target, htmx=True)
        assert response.status_code == 204
        location = response.headers["HX-Redirect"]
        assert location.isascii() and location.startswith("/") and not location.startswith("//"), location
        client.post("/logout")


def test_guessing_the_current_password_is_throttled_like_log_in(client, customer, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        wrong = client.post(
            "/password", data={"current": "guess", "password": "brand new pass 42", "confirm": "brand new pass 42"}
        )
        assert wrong.status_code == 422
    right = client.post(
        "/password", data={"current": "correct horse", "password": "brand new pass 42", "confirm": "brand new pass 42"}
    )
    assert right.status_code == 429 and "Too many wrong current passwords" in right.get_data(as_text=True)
