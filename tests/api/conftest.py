"""Fixtures of the API tests: a customer's token and server keys, each as a small client."""

from __future__ import annotations

import json

import pytest

from portal import tokens
from tests.conftest import utc


class Caller:
    def __init__(self, client, secret: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def get(self, path, **kw):
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path, payload=None, raw=None, headers=None, **kw):
        data = raw if raw is not None else json.dumps(payload if payload is not None else {})
        return self.client.post(
            path, data=data, headers={**self.headers, **(headers or {})}, content_type="application/json", **kw
        )


@pytest.fixture()
def clock(config):
    config["CLOCK"] = lambda: utc(2024, 3, 5, 12)
    return utc(2024, 3, 5, 12)


@pytest.fixture()
def staff_user(make_user):
    return make_user(email="staff@example.com", is_staff=True)


@pytest.fixture()
def server_key(client, session, staff_user, clock):
    """A write-scoped server key."""
    _, secret = tokens.issue_server_key(session, "CRM", "write", clock, actor_id=staff_user.id)
    session.commit()
    return Caller(client, secret)


@pytest.fixture()
def read_key(client, session, staff_user, clock):
    _, secret = tokens.issue_server_key(session, "Reports", "read", clock, actor_id=staff_user.id)
    session.commit()
    return Caller(client, secret)


@pytest.fixture()
def customer_token(client, session, make_user, clock):
    user = make_user(email="bot@example.com")
    _, secret = tokens.issue(session, user, "test", clock)
    session.commit()
    caller = Caller(client, secret)
    caller.user = user
    return caller
