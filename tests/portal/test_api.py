import json
import re

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from portal.api.openapi import spec
from portal.billing.invoices import unpayable_reason
from portal.models import Invoice, InvoiceLine, Subscription
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


def served_api_routes(app) -> dict[str, set[str]]:
    """Every route under /api/ in the app's URL map, spelled as OpenAPI paths, with its methods."""
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        served.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    # a route also served without its trailing slash is the same view, documented once
    return {path: ops for path, ops in served.items() if path.endswith("/") or f"{path}/" not in served}


def test_the_openapi_document_lists_every_endpoint(client, app):
    """Every route under /api/ (walked from the app's URL map) and its methods are documented,
    and the document names nothing the app does not serve."""
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    assert served_api_routes(app) == {path: set(ops) for path, ops in doc["paths"].items()}
    for _name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_the_completeness_check_sees_an_undocumented_route(app):
    """The walk above notices a route added without documenting it."""
    from portal.app import create_app
    from tests.conftest import TEST_CONFIG

    other = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    other.add_url_rule("/api/secret/<int:thing_id>/", "api.secret", lambda thing_id: "", methods=["DELETE"])
    served = served_api_routes(other)
    assert served["/api/secret/{thing_id}/"] == {"delete"}
    assert "/api/secret/{thing_id}/" not in spec()["paths"]


def test_the_subscription_shows_its_collection_method_and_card(api, session):
    from portal.billing.collection import CardDetails, ChargeOutcome, begin_attempt, record_outcome, save_card
    from portal.billing.settings import BillingSettings

    assert api.get("/api/subscription/").status_code == 404
    api.post("/api/subscribe/", {"plan": "pro"})
    shown = api.get("/api/subscription/")
    assert shown.json["collection_method"] == "send_invoice" and shown.json["payment_method"] is None
    conforms(shown, "Subscription")
    save_card(session, api.user.id, CardDetails("demo", "pm_demo_decline_1", "visa", "0341", 12, 2034), utc(2024, 1, 2))
    invoice_id = session.scalar(select(Invoice.id))
    attempt = begin_attempt(session, invoice_id, utc(2024, 1, 2, 9))
    record_outcome(
        session,
        attempt.id,
        ChargeOutcome("failed", "demo", "x", "card_declined"),
        utc(2024, 1, 2, 9),
        BillingSettings(),
    )
    session.commit()
    shown = api.get("/api/subscription/")
    assert shown.json["collection_method"] == "charge_automatically"
    assert shown.json["payment_method"] == {"brand": "visa", "last4": "0341", "exp_month": 12, "exp_year": 2034}
    conforms(shown, "Subscription")
    invoice = api.get(f"/api/invoices/{invoice_id}/")
    [tried] = invoice.json["payment_attempts"]
    assert (tried["attempt"], tried["status"], tried["failure_code"]) == (1, "failed", "card_declined")
    assert tried["failure_reason"] == "your bank declined the card"
    assert tried["next_attempt_at"] == "2024-01-03T00:00:00+00:00"
    conforms(invoice, "Invoice")


def test_an_invoice_shows_its_credit_notes_refunds_and_amount_due(api, session):
    from portal.billing import credits
    from portal.billing.settings import BillingSettings

    api.post("/api/subscribe/", {"plan": "pro"})
    invoice_id = api.get("/api/invoices/").json["items"][0]["id"]
    line_id = session.scalar(select(InvoiceLine.id).where(InvoiceLine.invoice_id == invoice_id))
    credits.issue_credit_note(
        session, invoice_id, {line_id: 900}, "Late start", None, utc(2024, 1, 2), BillingSettings()
    )
    session.commit()
    shown = api.get(f"/api/invoices/{invoice_id}/")
    conforms(shown, "Invoice")
    body = shown.json
    assert (body["total"], body["credited"], body["credit_applied"], body["amount_due"]) == (2900, 900, 0, 2000)
    [note] = body["credit_notes"]
    assert (note["number"], note["total"], note["outcome"], note["reason"]) == (
        "CN-000001",
        900,
        "reduce_due",
        "Late start",
    )
    assert note["lines"] == [{"description": "Pro plan", "amount": 900, "tax": 0}] and body["refunds"] == []
