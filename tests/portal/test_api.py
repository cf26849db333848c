import json

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from portal.api.openapi import spec
from portal.billing.invoices import unpayable_reason
from portal.models import Invoice, Subscription
from portal.tokens import issue
from tests.conftest import utc


@pytest.fixture()
def api(client, session, make_user):
    """A client calling the API as a fresh customer with a bearer token."""
    user = make_user(email="bot@example.com")
    _, secret = issue(session, user, "test", utc(2024, 1, 1))
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}

    class Api:
        def get(self, path, **kw):
            return client.get(path, headers=headers, **kw)

        def post(self, path, payload=None, raw=None, **kw):
            data = raw if raw is not None else json.dumps(payload if payload is not None else {})
            return client.post(path, data=data, headers=headers, content_type="application/json", **kw)

    api = Api()
    api.user = user
    return api


def conforms(response, schema: str) -> None:
    """The response body validates against the OpenAPI document's schema."""
    document = spec()
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    Draft202012Validator(root).validate(response.get_json())


def test_subscribe_list_show_pay_and_unsubscribe(api, session):
    created = api.post("/api/subscribe/", {"plan": "pro"})
    assert created.status_code == 201 and created.json["plan"] == "pro" and created.json["status"] == "active"
    conforms(created, "Subscription")
    listing = api.get("/api/invoices/")
    assert listing.status_code == 200 and listing.json["total"] == 1
    conforms(listing, "InvoicePage")
    invoice_id = listing.json["items"][0]["id"]
    shown = api.get(f"/api/invoices/{invoice_id}/")
    assert shown.json["lines"][0]["amount"] == 2900 and shown.json["total_display"] == "$29.00"
    conforms(shown, "Invoice")
    paying = api.post("/api/pay/", {"invoice_id": invoice_id})
    assert paying.status_code == 200 and paying.json["checkout_url"].startswith("/demo/checkout/")
    conforms(paying, "Checkout")
    ended = api.post("/api/unsubscribe/")
    assert ended.status_code == 200 and ended.json["cancel_at_period_end"] is True
    at_once = api.post("/api/unsubscribe/", {"at_once": True})
    assert at_once.json["status"] == "canceled"
    conforms(at_once, "Subscription")


@pytest.mark.parametrize(
    "payload, raw, status, code",
    [
        ({"plan": "gold"}, None, 422, "unknown_plan"),
        ({}, None, 422, "invalid"),
        ({"plan": 5}, None, 422, "invalid"),
        (None, "{not json", 400, "malformed_json"),
        (None, "[1, 2]", 400, "malformed_json"),
    ],
)
def test_subscribe_bad_input(api, session, payload, raw, status, code):
    response = api.post("/api/subscribe/", payload, raw=raw)
    assert response.status_code == status and response.json["error"]["code"] == code
    conforms(response, "Error")
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_subscribing_twice_is_a_conflict(api, session):
    api.post("/api/subscribe/", {"plan": "pro"})
    again = api.post("/api/subscribe/", {"plan": "basic"})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_subscribed"


def test_an_oversized_body_is_refused(api, config):
    config["MAX_CONTENT_LENGTH"] = 1000
    response = api.post("/api/subscribe/", raw=json.dumps({"plan": "pro", "pad": "x" * 5000}))
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"


def test_authentication_is_required_and_checked(client, session):
    assert client.get("/api/invoices/").status_code == 401
    bad = client.get("/api/invoices/", headers={"Authorization": "Bearer sbp_wrong"})
    assert bad.status_code == 401 and bad.json["error"]["code"] == "unauthorized"


def test_session_callers_must_send_the_csrf_header(client, customer, config):
    config["WTF_CSRF_ENABLED"] = True
    assert client.get("/api/invoices/").status_code == 200
    refused = client.post("/api/unsubscribe/", data="{}", content_type="application/json")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"


@pytest.mark.parametrize(
    "query, status",
    [
        ("?status=bogus", 422),
        ("?page=0", 422),
        ("?per_page=500", 422),
        ("?page=x", 422),
        ("?status=open&per_page=1", 200),
    ],
)
def test_invoice_listing_parameters(api, query, status):
    api.post("/api/subscribe/", {"plan": "pro"})
    assert api.get("/api/invoices/" + query).status_code == status


def test_one_customer_never_reaches_anothers_invoice(api, customer, session):
    assert api.get("/api/invoices/1/").status_code == 404
    assert api.post("/api/pay/", {"invoice_id": 1}).status_code == 404
    assert api.get("/api/invoices/").json["total"] == 0


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"invoice_id": "1"}, 422, "invalid"),
        ({"invoice_id": True}, 422, "invalid"),
        ({}, 422, "invalid"),
        ({"invoice_id": 999}, 404, "not_found"),
    ],
)
def test_pay_bad_input(api, payload, status, code):
    response = api.post("/api/pay/", payload)
    assert response.status_code == status and response.json["error"]["code"] == code


def test_paying_a_paid_or_void_invoice_is_a_conflict(api, session):
    api.post("/api/subscribe/", {"plan": "pro"})
    invoice = session.scalar(select(Invoice))
    for status in ("paid", "void"):
        invoice.status = status
        session.commit()
        response = api.post("/api/pay/", {"invoice_id": invoice.id})
        assert response.status_code == 409 and response.json["error"]["code"] == "not_payable"
        assert response.json["error"]["message"] == unpayable_reason(invoice)  # the pay page's words too


def test_a_non_numeric_id_is_a_json_404(api):
    response = api.get("/api/invoices/abc/")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_the_openapi_document_lists_every_endpoint(client):
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/api/subscribe/",
        "/api/unsubscribe/",
        "/api/invoices/",
        "/api/invoices/{invoice_id}/",
        "/api/pay/",
        "/api/billing-details/",
    }
    for _name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
