"""Issue 12, items 14 and 16 under gunicorn, as production serves the app.

Chunked request bodies exist only with a real server (gunicorn sets
wsgi.input_terminated and hands the app an unbounded stream): MAX_CONTENT_LENGTH must
hold for them too, with a 413 rather than a silently cut body read as "invalid JSON".
"""

from __future__ import annotations

import json
import socket

import pytest
import requests

from portal.billing.catalog import seed_plans
from portal.extensions import db
from portal.models import User
from portal.tokens import issue
from tests.conftest import empty_tables, utc
from tests.live_server import gunicorn, server_log

LIMIT = 1024 * 1024  # the default MAX_CONTENT_LENGTH


@pytest.fixture(scope="module")
def live(app, tmp_path_factory):
    """One gunicorn per backend for this module; a customer with an API token."""
    with app.app_context():
        empty_tables(db.engine)
        seed_plans(db.session)
        user = User(email="bot@example.com")
        db.session.add(user)
        db.session.flush()
        _, secret = issue(db.session, user, "live", utc(2024, 1, 1))
        db.session.commit()
        db.session.remove()
    instance = tmp_path_factory.mktemp("live") / "instance"
    with gunicorn(app.config["TEST_DATABASE_URI"], instance) as base:
        yield base, {"Authorization": f"Bearer {secret}"}, instance


def chunked_post(
    base: str, path: str, body: bytes, headers: dict[str, str], chunk: int = 64 * 1024
) -> tuple[int, bytes]:
    """POST with Transfer-Encoding: chunked over a raw socket; (status, response body)."""
    host, port = base.removeprefix("http://").split(":")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Transfer-Encoding: chunked",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for start in range(0, len(body), chunk):
                piece = body[start : start + chunk]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before it has read everything
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
    head, _, rest = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def test_an_oversized_chunked_api_body_is_413_json(live):
    base, bearer, instance = live
    body = json.dumps({"plan": "pro", "pad": "x" * (2 * LIMIT)}).encode()
    status, rest = chunked_post(base, "/api/subscribe/", body, {**bearer, "Content-Type": "application/json"})
    assert status == 413, (rest, server_log(instance))
    assert json.loads(rest)["error"]["code"] == "too_large"


def test_a_chunked_body_just_over_the_limit_is_413_and_one_within_is_read(live):
    base, bearer, instance = live
    over = b'{"plan": "pro", "pad": "' + b"x" * LIMIT + b'"}'
    assert chunked_post(base, "/api/subscribe/", over, {**bearer, "Content-Type": "application/json"})[0] == 413
    within = json.dumps({"plan": "pro", "pad": "x" * (LIMIT - 100)}).encode()
    status, rest = chunked_post(base, "/api/subscribe/", within, {**bearer, "Content-Type": "application/json"})
    assert status == 201, (rest, server_log(instance))


def test_an_oversized_chunked_form_is_413(live):
    base, _, instance = live
    body = b"email=a%40b.c&password=" + b"x" * (2 * LIMIT)
    status, rest = chunked_post(base, "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413, (rest[:300], server_log(instance))


BIG = str(2**63)


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("GET", f"/api/invoices/{BIG}/", None, 404, "not_found"),
        ("GET", f"/api/invoices/?page={2**63 - 1}", None, 422, "invalid"),
        ("GET", "/api/invoices/?page=%C2%B2", None, 422, "invalid"),
        ("POST", "/api/pay/", f'{{"invoice_id": {BIG}}}', 400, "number_out_of_range"),
        ("POST", "/api/subscribe/", '{"plan": "pro\\u0000"}', 400, "nul_character"),
        ("POST", "/api/subscribe/", '{"plan": "\\ud800"}', 400, "invalid_text"),
        ("POST", "/api/subscribe/", "[" * 100_000 + "]" * 100_000, 400, "too_deep"),
        ("DELETE", "/api/invoices/", None, 405, "method_not_allowed"),
        ("PUT", "/api/subscribe/", "{}", 405, "method_not_allowed"),
    ],
)
def test_hostile_api_calls_under_gunicorn_are_json_4xx(live, method, path, body, status, code):
    base, bearer, instance = live
    response = requests.request(
        method, base + path, data=body, timeout=20, headers={**bearer, "Content-Type": "application/json"}
    )
    assert response.status_code == status, (response.text[:300], server_log(instance))
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
