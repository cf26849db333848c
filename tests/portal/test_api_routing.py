"""Issue 12 leftover E: nothing under /api/ answers HTML.

A missing trailing slash was a 308 with an HTML body (clients do not replay a POST body on
it) and OPTIONS was Flask's empty 200 text/html. Every route answers with and without its
trailing slash; OPTIONS is an empty 204 with Allow; anything else is the JSON error shape.
"""

from __future__ import annotations

import pytest

from tests.portal.test_api import api  # noqa: F401


def test_subscribe_without_the_trailing_slash_subscribes(api):
    response = api.post("/api/subscribe", {"plan": "pro"})
    assert response.status_code == 201 and response.json["plan"] == "pro"


@pytest.mark.parametrize("path", ["/api/invoices", "/api/invoices/", "/api/openapi.json"])
def test_reads_answer_with_and_without_the_trailing_slash(api, path):
    response = api.get(path)
    assert response.status_code == 200 and response.is_json


def test_an_invoice_and_pay_without_the_trailing_slash(api):
    api.post("/api/subscribe", {"plan": "pro"})
    invoice_id = api.get("/api/invoices").json["items"][0]["id"]
    shown = api.get(f"/api/invoices/{invoice_id}")
    assert shown.status_code == 200 and shown.json["id"] == invoice_id
    paying = api.post("/api/pay", {"invoice_id": invoice_id})
    assert paying.status_code == 200 and paying.json["invoice_id"] == invoice_id
    ended = api.post("/api/unsubscribe", {"at_once": True})
    assert ended.status_code == 200 and ended.json["status"] == "canceled"


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/api/invoices/", {"GET", "HEAD", "OPTIONS"}),
        ("/api/invoices", {"GET", "HEAD", "OPTIONS"}),
        ("/api/subscribe/", {"POST", "OPTIONS"}),
        ("/api/pay", {"POST", "OPTIONS"}),
        ("/api/invoices/1/", {"GET", "HEAD", "OPTIONS"}),
        ("/api/openapi.json", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_options_is_an_empty_204_with_allow(client, session, path, allowed):
    response = client.options(path)
    assert response.status_code == 204 and response.data == b""
    assert "text/html" not in response.headers.get("Content-Type", "")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/subscribe", 405),
        ("DELETE", "/api/invoices", 405),
        ("GET", "/api//invoices/", 404),
        ("OPTIONS", "/api/nothing-here/", 404),
        ("POST", "/api/invoices/1", 405),
    ],
)
def test_no_html_under_api(client, session, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status and response.is_json, response.get_data(as_text=True)[:200]
    assert response.json["error"]["code"] and response.json["error"]["message"]
