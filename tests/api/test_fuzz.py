"""The OpenAPI document fuzzed with schemathesis against the app, as a customer and as a server key:
no 5xx, every status documented, every body within its schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal import tokens
from portal.api.openapi import spec
from portal.billing.subscriptions import find_plan, subscribe
from tests.conftest import utc

schema = schemathesis.openapi.from_dict(spec())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(params=["customer_token", "server_key"])
def caller(request, session, make_user, settings):
    """Headers of one caller, and a subscribed customer's id for the generated paths to reach."""
    staff = make_user(email="staff@example.com", is_staff=True)
    customer = make_user(email="ada@example.com")
    subscribe(session, customer, find_plan(session, "basic"), utc(2024, 3, 1, 9), settings)
    now = utc(2024, 3, 5, 12)
    if request.param == "server_key":
        _, secret = tokens.issue_server_key(session, "fuzz", "write", now, actor_id=staff.id)
    else:
        _, secret = tokens.issue(session, customer, "fuzz", now)
    session.commit()
    return {"Authorization": f"Bearer {secret}"}, customer.id


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_to_its_document(case, app, caller):
    headers, customer_id = caller
    ids = case.path_parameters or {}
    if isinstance(ids.get("customer_id"), int) and ids["customer_id"] % 2 == 0:
        ids["customer_id"] = customer_id  # half the generated ids name the real customer, not a 404
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)
