"""The API's promotion_code on subscribe (own account and server key): discount line, 422 reasons."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from portal.api.openapi import spec
from portal.models import Coupon, PromotionCode, Subscription
from portal.tokens import issue
from tests.conftest import utc


def conforms(response, schema: str) -> None:
    document = spec()
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    Draft202012Validator(root).validate(response.get_json())


@pytest.fixture()
def api(client, session, make_user):
    user = make_user(email="bot@example.com")
    _, secret = issue(session, user, "test", utc(2024, 1, 1))
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}

    class Api:
        def get(self, path):
            return client.get(path, headers=headers)

        def post(self, path, payload):
            return client.post(path, data=json.dumps(payload), headers=headers, content_type="application/json")

    return Api()


@pytest.fixture()
def codes(session):
    coupon = Coupon(name="Launch 20 %", percent_off=Decimal(20), duration="once")
    spent = Coupon(name="Spent", amount_off=500, currency="USD", duration="once", max_redemptions=1, times_redeemed=1)
    session.add_all(
        [
            PromotionCode(coupon=coupon, code="LAUNCH"),
            PromotionCode(coupon=coupon, code="OLD", expires_at=utc(2020, 1, 1)),
            PromotionCode(coupon=coupon, code="OFF", active=False),
            PromotionCode(coupon=spent, code="SPENT"),
        ]
    )
    session.commit()


def test_subscribe_with_a_code_puts_the_discount_on_the_first_invoice(api, codes, session):
    created = api.post("/api/subscribe/", {"plan": "pro", "promotion_code": "launch"})
    assert created.status_code == 201, created.json
    conforms(created, "Subscription")
    invoice_id = api.get("/api/invoices/").json["items"][0]["id"]
    shown = api.get(f"/api/invoices/{invoice_id}/")
    conforms(shown, "Invoice")
    assert [(line["kind"], line["amount"]) for line in shown.json["lines"]] == [("item", 2900), ("discount", -580)]
    assert shown.json["lines"][1]["description"] == "Discount: Launch 20 %"
    assert (shown.json["subtotal"], shown.json["total"]) == (2320, 2320)


@pytest.mark.parametrize(
    "code, reason",
    [
        ("nope", "coupon_unknown"),
        ("old", "coupon_expired"),
        ("off", "coupon_paused"),
        ("spent", "coupon_used_up"),
        ("x" * 10_000, "coupon_unknown"),
    ],
)
def test_a_bad_code_is_422_with_its_reason_and_subscribes_nothing(api, codes, session, code, reason):
    refused = api.post("/api/subscribe/", {"plan": "pro", "promotion_code": code})
    assert refused.status_code == 422 and refused.json["error"]["code"] == reason
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_a_nul_byte_is_refused_as_hostile_input(api, codes, session):
    refused = api.post("/api/subscribe/", {"plan": "pro", "promotion_code": "LA\u0000UNCH"})
    assert refused.status_code == 400 and refused.json["error"]["message"]
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_a_code_that_is_not_a_string_is_422(api, codes):
    refused = api.post("/api/subscribe/", {"plan": "pro", "promotion_code": 42})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "invalid"


def test_the_server_key_subscribe_takes_a_code(server_key, make_user, codes, session):
    user = make_user(email="c@example.com")
    made = server_key.post(f"/api/customers/{user.id}/subscription/", {"plan": "basic", "promotion_code": "LAUNCH"})
    assert made.status_code == 201, made.json
    again = make_user(email="d@example.com")
    refused = server_key.post(f"/api/customers/{again.id}/subscription/", {"plan": "basic", "promotion_code": "old"})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "coupon_expired"
    assert session.scalar(select(PromotionCode.times_redeemed).where(PromotionCode.code == "LAUNCH")) == 1


def test_the_openapi_documents_the_code():
    body = spec()["paths"]["/api/subscribe/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "promotion_code" in body["properties"]
