"""Issue 12, item 3: concurrent log-in attempts against gunicorn on PostgreSQL.

Failures are counted by one atomic upsert before the password is checked, so
however many attempts arrive at once, no more than the limit get a password
checked (a 401); the rest are refused (429). Before, the counter was read,
incremented and written back, and concurrent attempts got past it.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading

import pytest
import requests
import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

from portal.app import create_app
from portal.extensions import db
from portal.models import LoginThrottle, User
from tests.conftest import TEST_CONFIG, _postgres_schema_url
from tests.live_server import gunicorn, server_log

ATTEMPTS = 40
ACCOUNT_LIMIT, ADDRESS_LIMIT = 5, 12


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    url, options, drop = _postgres_schema_url()
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": options})
    folder = tmp_path_factory.mktemp("login-race")
    with app.app_context():
        upgrade()
        db.session.add(User(email="owner@example.com", password_hash=generate_password_hash("right password")))
        db.session.commit()
    try:
        with gunicorn(
            url,
            folder / "instance",
            workers=2,
            LOGIN_MAX_FAILURES=str(ACCOUNT_LIMIT),
            LOGIN_MAX_FAILURES_PER_ADDRESS=str(ADDRESS_LIMIT),
        ) as base:
            yield app, base, folder / "instance"
    finally:
        with app.app_context():
            db.engine.dispose()
        drop()


@pytest.fixture()
def fresh_counters(live):
    app, _base, _instance = live
    with app.app_context():
        db.session.execute(sa.delete(LoginThrottle))
        db.session.commit()
    return live


def _ready_browser(base: str) -> tuple[requests.Session, str]:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', page.text
    )
    return browser, token.group(1)


def _all_at_once(base: str, emails: list[str]) -> list[int]:
    """One wrong password per email, all released together from separate connections."""
    browsers = [_ready_browser(base) for _ in emails]
    start = threading.Barrier(len(emails))

    def attempt(i: int) -> int:
        browser, token = browsers[i]
        start.wait(timeout=30)
        response = browser.post(
            f"{base}/login",
            timeout=60,
            allow_redirects=False,
            data={"csrf_token": token, "email": emails[i], "password": "wrong guess"},
        )
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(emails)) as pool:
        return list(pool.map(attempt, range(len(emails))))


def _failures(app, key_prefix: str) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(sa.select(LoginThrottle.failures).where(LoginThrottle.key.startswith(key_prefix)))
        )


@pytest.mark.parametrize("email", ["owner@example.com", "nobody@example.com"], ids=["real", "unknown"])
def test_concurrent_guesses_on_one_account_check_at_most_the_limit(fresh_counters, email):
    app, base, instance = fresh_counters
    answers = _all_at_once(base, [email] * ATTEMPTS)
    assert sorted(set(answers)) == [401, 429], server_log(instance)
    assert answers.count(401) == ACCOUNT_LIMIT, answers
    assert _failures(app, "acct:") == [ACCOUNT_LIMIT]


def test_concurrent_guesses_from_one_address_check_at_most_the_address_limit(fresh_counters):
    app, base, instance = fresh_counters
    answers = _all_at_once(base, [f"spray{i}@example.com" for i in range(ATTEMPTS)])
    assert sorted(set(answers)) == [401, 429], server_log(instance)
    assert answers.count(401) == ADDRESS_LIMIT, answers
    assert _failures(app, "addr:") == [ADDRESS_LIMIT]


@pytest.mark.parametrize(
    "target", ["/%0d%0a/evil.example", "/%09/evil.example", "/%5Cevil.example", "/%0d%0aSet-Cookie:%20x=1"]
)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_hostile_next_under_gunicorn_is_neither_followed_nor_a_500(fresh_counters, target, htmx):
    """Item 1 as production serves it: gunicorn turned a CR/LF in a header into a 500."""
    _app, base, instance = fresh_counters
    browser, token = _ready_browser(base)
    headers = {"HX-Request": "true"} if htmx else {}
    response = browser.post(
        f"{base}/login?next={target}",
        timeout=30,
        allow_redirects=False,
        headers=headers,
        data={"csrf_token": token, "email": "owner@example.com", "password": "right password"},
    )
    if htmx:
        assert response.status_code == 204 and response.headers["HX-Redirect"] == "/account"
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/account", server_log(instance)
