"""Issue 12, security items: what an outsider or a hostile customer tried."""
from __future__ import annotations

import pytest

try:
    from portal.web import local_path
except ImportError:
    local_path = lambda t: t

PASSWORD = "right password"


def log_in(client, next_param: str | None = None, htmx: bool = False, email="ada@example.com"):
    url = "/login" if next_param is None else "/login?next=" + next_param
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={"email": email, "password": PASSWORD}, headers=headers)


# --- item 1: open redirect after log-in -------------------------------------------------

OFF_SITE = [
    "//evil.example", "/%09/evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
    "%5C%5Cevil.example", "/%0D/evil.example", "/%0A/evil.example", "/%0d%0aSet-Cookie:%20x=1",
    "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "%09//evil.example",
    "/%09%09/evil.example", "/\\evil.example", "%2F%2Fevil.example", "///evil.example",
    " //evil.example", "evil.example", "/%00/x",
]


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_login_never_sends_the_browser_off_site(client, make_user, target, htmx):
    make_user(email="ada@example.com", password=PASSWORD)
    response = log_in(client, target, htmx=htmx)
    if htmx:
        assert response.status_code == 204
        assert response.headers["HX-Redirect"] == "/account"
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == "/account"


@pytest.mark.parametrize("target", ["/invoices", "/invoices?page=2", "/admin/invoice/?flt0=1#x", "/a/b//c"])
def test_login_follows_a_local_next(client, make_user, target):
    make_user(email="ada@example.com", password=PASSWORD)
    from urllib.parse import quote
    response = log_in(client, quote(target, safe=""))
    assert response.status_code == 303 and response.headers["Location"] == target
    client.post("/logout")
    response = log_in(client, quote(target, safe=""), htmx=True)
    assert response.headers["HX-Redirect"] == target


@pytest.mark.parametrize("target", ["/\t/evil", "/\r\n/x", "\\\\evil", "/\\evil", "//evil", "https://x",
                                    "", None, "/ok\x7f", "/ok\x00"])
def test_local_path_refuses_what_a_browser_would_take_off_site(target):
    assert local_path(target) is None


def test_staff_login_link_round_trips_through_next(client, make_user):
    make_user(email="ada@example.com", password=PASSWORD, is_staff=True)
    bounce = client.get("/admin/invoice/?flt0_status_equals=overdue")
    assert bounce.status_code == 302
    login_url = bounce.headers["Location"]
    response = client.post(login_url, data={"email": "ada@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/admin/invoice/?flt0_status_equals=overdue"
