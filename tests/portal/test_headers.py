"""Issue 12, item 5: security headers on every response; Secure cookies on https."""

import re

import pytest

from portal.app import create_app
from tests.conftest import TEST_CONFIG, login


def _csp(response) -> dict[str, str]:
    parts = (p.strip().split(" ", 1) for p in response.headers["Content-Security-Policy"].split(";"))
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


@pytest.mark.parametrize(
    "path", ["/pricing", "/login", "/no-such-page", "/static/app.css", "/api/invoices/", "/admin/", "/api/openapi.json"]
)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    csp = _csp(response)
    assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'" and "'unsafe-inline'" not in csp["script-src"]
    assert "Strict-Transport-Security" not in response.headers  # http here


def test_the_nonce_is_new_on_every_response(client):
    nonces = {_csp(client.get("/pricing"))["script-src"] for _ in range(3)}
    assert len(nonces) == 3


def test_admin_pages_stamp_the_nonce_and_allow_only_their_own_handlers(client, make_user, session):
    login(client, make_user(email="staff@example.com", is_staff=True))
    response = client.get("/admin/invoice/")
    script_src = _csp(response)["script-src"]
    nonce = script_src.split("'nonce-")[1].split("'")[0]
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    assert "'unsafe-hashes'" in script_src and "'unsafe-hashes'" not in _csp(client.get("/account"))["script-src"]


def test_the_handler_hashes_match_what_flask_admin_writes():
    from portal.security import _hash

    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_request_context("/admin/invoice/"):
        csp = app.process_response(app.make_response("x")).headers["Content-Security-Policy"]
    for handler in ("return modelActions.execute('void');", "return modelActions.execute('archive');", "return false;"):
        assert _hash(handler) in csp


def test_cookies_are_secure_when_the_portal_is_https(app, make_user, session):
    make_user(email="ada@example.com", password="right password")
    session.commit()
    secure_app = create_app(
        {
            **TEST_CONFIG,
            "PUBLIC_URL": "https://billing.example.com",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SQLALCHEMY_ENGINE_OPTIONS": app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        }
    )
    assert secure_app.config["SESSION_COOKIE_SECURE"] is True
    browser = secure_app.test_client()
    response = browser.post(
        "/login",
        base_url="https://billing.example.com",
        data={"email": "ada@example.com", "password": "right password"},
    )
    assert response.status_code == 303
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("; Secure" in c for c in cookies), cookies
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    with secure_app.app_context():
        from portal.extensions import db

        db.engine.dispose()


def test_cookies_stay_usable_on_plain_http_for_a_laptop(client, make_user, session):
    make_user(email="ada@example.com", password="right password")
    session.commit()
    response = client.post("/login", data={"email": "ada@example.com", "password": "right password"})
    assert all("; Secure" not in c for c in response.headers.getlist("Set-Cookie"))
