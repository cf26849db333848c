"""Rate limits: the API per key or token, log-in per account and per address; 429 with Retry-After."""

import pytest
import redis

from portal.app import create_app
from portal.extensions import db
from portal.limits import EXTENSION
from tests.conftest import REDIS_URL, TEST_CONFIG, service_unavailable


@pytest.fixture()
def limited(app, config):
    """Fresh counters for this test (the app's store is its memory)."""
    app.extensions[EXTENSION].reset()
    yield config
    app.extensions[EXTENSION].reset()


def test_the_api_answers_429_json_with_retry_after_per_caller(limited, customer_token, server_key):
    limited["API_RATE_LIMIT"] = "3/minute"
    assert [customer_token.get("/api/plans/").status_code for _ in range(3)] == [200, 200, 200]
    over = customer_token.get("/api/plans/")
    assert over.status_code == 429 and over.json["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert customer_token.post("/api/subscribe/", {"plan": "pro"}).status_code == 429
    # another caller has its own allowance
    assert server_key.get("/api/plans/").status_code == 200


def test_log_in_is_limited_per_account(limited, client, make_user):
    limited["LOGIN_RATE_LIMIT_PER_ACCOUNT"] = "2/minute"
    make_user(email="ada@example.com")
    for _ in range(2):
        client.post("/login", data={"email": "ada@example.com", "password": "wrong"})
    over = client.post("/login", data={"email": "ADA@example.com", "password": "correct horse"})
    html = over.get_data(as_text=True)
    assert over.status_code == 429 and "Too many log-in attempts" in html and 'name="email"' in html
    assert int(over.headers["Retry-After"]) >= 1
    # another account from the same address is not held back
    other = client.post("/login", data={"email": "bob@example.com", "password": "x"})
    assert other.status_code == 401
    assert client.get("/login").status_code == 200  # only attempts count


def test_log_in_is_limited_per_address(limited, client, session):
    limited["LOGIN_RATE_LIMIT_PER_ADDRESS"] = "3/minute"
    answers = [
        client.post("/login", data={"email": f"u{i}@example.com", "password": "x"}).status_code for i in range(4)
    ]
    assert answers == [401, 401, 401, 429]
    elsewhere = client.post(
        "/login", data={"email": "u9@example.com", "password": "x"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert elsewhere.status_code == 401


def test_counters_live_in_redis_when_it_is_configured(app):
    try:
        store = redis.Redis.from_url(REDIS_URL)
        store.ping()
    except redis.ConnectionError as exc:
        service_unavailable("Redis", exc)
    store.flushdb()
    redis_app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": REDIS_URL,
            "API_RATE_LIMIT": "2/minute",
        }
    )
    try:
        web = redis_app.test_client()
        headers = {"Authorization": "Bearer sbp_unknown"}
        assert [web.get("/api/plans/", headers=headers).status_code for _ in range(3)] == [401, 401, 429]
        assert any(b"ratelimit" in key for key in store.keys("*"))
    finally:
        with redis_app.app_context():
            db.engine.dispose()
        store.flushdb()
