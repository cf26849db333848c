"""Issue 12, item 14: hostile input is a clear 4xx, never a 500, on SQLite and PostgreSQL.

One table per surface (portal pages, JSON API, staff console); the `client` fixture runs
each on both backends. PostgreSQL refuses NUL in text and 2**63 in BIGINT where SQLite
overflows in Python instead, so both must be covered.
"""

from __future__ import annotations

import json

import pytest

from portal.tokens import issue
from tests.conftest import login, utc

BIG = str(2**63)  # one past BIGINT
MAX = str(2**63 - 1)  # the largest BIGINT: a valid id that names nothing


@pytest.fixture()
def bearer(session, customer):
    _, secret = issue(session, customer, "test", utc(2024, 1, 1))
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


def no_500(response):
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    return response


PAGES = [
    ("GET", f"/invoices/{BIG}", None, 404),
    ("GET", f"/invoices/{MAX}", None, 404),
    ("GET", "/invoices/%C2%B2", None, 404),  # '²'
    ("GET", "/invoices/%D9%A3", None, 404),  # Arabic-Indic 3: int() takes it
    ("POST", f"/invoices/{BIG}/pay", {}, 404),
    ("POST", f"/tokens/{BIG}/revoke", {}, 404),
    ("GET", f"/payments/return?invoice_id={BIG}", None, 404),
    ("GET", f"/invoices?page={MAX}", None, 400),
    ("GET", "/invoices?page=%C2%B2", None, 400),
    ("GET", "/invoices?page=%D9%A3", None, 400),
    ("GET", "/invoices?page=0", None, 400),
    ("GET", "/invoices?status=open%00", None, 400),
    ("GET", "/pricing?q=%00", None, 400),
    ("GET", "/account/change-plan?plan=basic%00", None, 400),
    ("POST", "/subscribe", {"plan": "pro\x00"}, 400),
    ("POST", "/tokens", {"name": "robot\x00"}, 400),
    (
        "POST",
        "/signup",
        {"name": "Eve\x00", "email": "eve@example.com", "password": "long password 1", "confirm": "long password 1"},
        400,
    ),
    ("POST", "/login", {"email": "ada\x00@example.com", "password": "x"}, 400),
    (
        "POST",
        "/password",
        {"current": "correct horse", "password": "new\x00password", "confirm": "new\x00password"},
        400,
    ),
]


@pytest.mark.parametrize("method, path, form, status", PAGES)
def test_hostile_input_on_pages_is_a_clear_4xx(client, customer, method, path, form, status):
    response = no_500(client.open(path, method=method, data=form))
    assert response.status_code == status
    if status == 400:
        text = response.get_data(as_text=True)
        assert "NUL character" in text or "must be a whole number" in text


API = [
    ("GET", f"/api/invoices/{BIG}/", None, 404, "not_found"),
    ("GET", f"/api/invoices/{MAX}/", None, 404, "not_found"),
    ("GET", f"/api/invoices/?page={MAX}", None, 422, "invalid"),
    ("GET", "/api/invoices/?page=%C2%B2", None, 422, "invalid"),
    ("GET", "/api/invoices/?per_page=%D9%A3", None, 422, "invalid"),
    ("GET", "/api/invoices/?status=%00", None, 400, "nul_character"),
    ("POST", "/api/pay/", f'{{"invoice_id": {BIG}}}', 400, "number_out_of_range"),
    ("POST", "/api/pay/", f'{{"invoice_id": -{BIG}1}}', 400, "number_out_of_range"),
    ("POST", "/api/pay/", f'{{"invoice_id": {MAX}}}', 404, "not_found"),
    ("POST", "/api/pay/", '{"invoice_id": 1e30}', 422, "invalid"),
    ("POST", "/api/pay/", '{"invoice_id": 1e400}', 400, "number_out_of_range"),
    ("POST", "/api/pay/", '{"invoice_id": NaN}', 400, "malformed_json"),
    ("POST", "/api/subscribe/", json.dumps({"plan": "pro\x00"}), 400, "nul_character"),
    ("POST", "/api/subscribe/", json.dumps({"plan\x00": "pro"}), 400, "nul_character"),
    ("POST", "/api/subscribe/", '{"plan": "\\ud800"}', 400, "invalid_text"),
    ("POST", "/api/subscribe/", '{"plan": "pro", "x": ["\\udfff"]}', 400, "invalid_text"),
    ("POST", "/api/subscribe/", '{"a":' * 100_000 + "1" + "}" * 100_000, 400, "too_deep"),
    ("POST", "/api/subscribe/", "[" * 40 + "]" * 40, 400, "too_deep"),
    ("POST", "/api/subscribe/", b"\xff\xfe{", 400, "malformed_json"),
    ("DELETE", "/api/invoices/", None, 405, "method_not_allowed"),
    ("POST", "/api/invoices/1/", "{}", 405, "method_not_allowed"),
    ("GET", "/api/pay/", None, 405, "method_not_allowed"),
]


@pytest.mark.parametrize("method, path, raw, status, code", API)
def test_hostile_input_on_the_api_is_a_json_4xx(client, bearer, method, path, raw, status, code):
    response = no_500(
        client.open(
            path, method=method, data=raw, headers=bearer, content_type="application/json" if raw is not None else None
        )
    )
    assert response.status_code == status
    assert response.is_json, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["code"] == code and error["message"]
    if status == 405:
        assert response.headers["Allow"]


def test_the_api_names_the_json_it_wants(client, bearer):
    response = client.post(
        "/api/subscribe/", data="plan=pro", headers=bearer, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415 and response.json["error"]["code"] == "unsupported_media_type"


@pytest.fixture()
def staff(session, make_user, client, customer):
    user = make_user(email="staff@example.com", is_staff=True)
    session.commit()
    login(client, user)
    return user


ADMIN = [
    ("GET", f"/admin/user/edit/?id={BIG}", None),
    ("GET", "/admin/user/edit/?id=%C2%B2", None),
    ("GET", f"/admin/invoice/details/?id={BIG}", None),
    ("GET", f"/admin/plan/edit/?id={MAX}", None),
    ("GET", f"/admin/subscription/change-plan/?id={BIG}", None),
    ("GET", f"/admin/invoice/mark-paid/?id={BIG}", None),
    ("GET", f"/admin/invoice/?page={MAX}", None),
    ("GET", f"/admin/invoice/?search={BIG}", None),
    ("GET", "/admin/user/?search=%00", None),
    ("POST", "/admin/invoice/action/", {"action": "void", "rowid": [BIG, "²", "1"]}),
    ("POST", "/admin/plan/new/", {"code": "gold\x00", "name": "Gold", "price": "100", "currency": "USD"}),
]


@pytest.mark.parametrize("method, path, form", ADMIN)
def test_hostile_input_in_the_staff_console_is_never_a_500(client, staff, method, path, form):
    response = no_500(client.open(path, method=method, data=form))
    assert response.status_code in (200, 302, 400, 404)
