"""Races against the app as production serves it: gunicorn on PostgreSQL, real parallel requests."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.live_server import gunicorn, server_log

PASSWORD = "correct horse"  # make_user's default
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture()
def live(app, session, tmp_path):
    """The test database served by gunicorn (4 workers: more requests truly at once); yields
    (base_url, instance_path)."""
    assert app.config["TEST_DATABASE_URI"].startswith("postgresql"), "races need PostgreSQL"
    instance = tmp_path / "instance"
    with gunicorn(app.config["TEST_DATABASE_URI"], instance, workers=4) as base:
        yield base, instance


def browser_session(base: str, email: str, password: str = PASSWORD) -> requests.Session:
    """A requests.Session logged in through the log-in form, with its CSRF token in .csrf."""
    web = requests.Session()
    web.csrf = csrf_token(web, f"{base}/login")
    answer = web.post(
        f"{base}/login",
        data={"csrf_token": web.csrf, "email": email, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303, f"log-in of {email} answered {answer.status_code}"
    web.csrf = csrf_token(web, f"{base}/account")
    return web


def csrf_token(web: requests.Session, url: str) -> str:
    page = web.get(url, timeout=30)
    match = _CSRF.search(page.text)
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def at_once(calls, timeout: float = 60) -> list:
    """Run the zero-argument callables in parallel threads released together; their results
    (or the exceptions they raised), in order. Bounded: each call must end within `timeout`."""
    gate = threading.Barrier(len(calls))

    def run(call):
        gate.wait(timeout=timeout)
        try:
            return call()
        except Exception as exc:  # reported, not raised: the caller asserts on all of them
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [f.result(timeout=timeout) for f in futures]


def no_server_errors(responses, instance) -> None:
    bad = [r for r in responses if isinstance(r, Exception) or r.status_code >= 500]
    assert not bad, f"{len(bad)} failed: {bad[:3]}\n{server_log(instance)[-4000:]}"
