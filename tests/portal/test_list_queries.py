"""Issue 12, speed under load: the customer's lists are cheap to read.

The account page reads its two invoice lists (to pay, recent) in one statement, and
lists read rows rather than ORM objects. What the pages show is pinned by
test_pages.py; these tests pin the cost and the edges of the new queries.
"""

from __future__ import annotations

import contextlib

import pytest
from flask import g
from sqlalchemy import event

from portal.billing.invoicing import run_billing
from portal.extensions import db
from portal.models import Invoice
from tests.conftest import utc
from tests.test_statements_per_request import bearer, counted  # noqa: F401  (a fixture)


@contextlib.contextmanager
def invoices_loaded():
    """Yields a list that collects each Invoice ORM object loaded while the block runs."""
    loaded = []

    def on_load(target, _context):
        loaded.append(target)

    event.listen(Invoice, "load", on_load)
    try:
        yield loaded
    finally:
        event.remove(Invoice, "load", on_load)


@pytest.fixture()
def many(session, customer, settings):
    run_billing(session, utc(2024, 12, 10), settings, session.commit)  # 12 invoices, none paid
    session.get(Invoice, 12).status = "paid"
    session.commit()
    return customer


def test_the_account_page_reads_its_invoice_lists_in_one_statement(app, client, many):
    """The subscription, the plans on offer, the saved card, and both lists (to pay, recent) in one statement."""
    client.get("/account")
    # The tests' app context outlives requests: start from an empty identity map, and no
    # user cached by Flask-Login on `g` from the first request.
    db.session.remove()
    g.pop("_login_user", None)
    with counted(app) as seen:
        html = client.get("/account").get_data(as_text=True)
    assert len([s for s in seen["statements"] if "FROM invoices" in s]) == 1
    # ...the saved card, the credit balance and its latest entries, and the user when not loaded yet
    assert len(seen["statements"]) <= 7, seen["statements"]
    to_pay = html[html.index('id="to-pay"') : html.index('id="recent-invoices"')]
    recent = html[html.index('id="recent-invoices"') :]
    assert [
        n for n in ("INV-000001", "INV-000002", "INV-000003", "INV-000004", "INV-000005", "INV-000006") if n in to_pay
    ] == ["INV-000001", "INV-000002", "INV-000003", "INV-000004", "INV-000005"]
    assert "All 11 unpaid invoices" in to_pay and "INV-000012" not in to_pay  # paid: not to pay
    assert recent.index("INV-000012") < recent.index("INV-000008") and "INV-000007" not in recent


def test_the_account_lists_when_nothing_is_waiting(app, client, session, many):
    for inv in session.query(Invoice):
        inv.status = "paid"
    session.commit()
    html = client.get("/account").get_data(as_text=True)
    assert 'id="to-pay" hidden' in html.replace('class="card" ', "")
    assert "INV-000012" in html[html.index('id="recent-invoices"') :]


@pytest.mark.parametrize(
    "path",
    [
        "/invoices",
        "/invoices?status=unpaid",
        "/invoices?status=paid",
        "/account",
        "/api/invoices/",
        "/api/invoices/?status=open&per_page=100",
    ],
)
def test_lists_read_rows_not_orm_objects(client, many, bearer, path):
    headers = bearer if path.startswith("/api/") else {}
    with invoices_loaded() as loaded:
        assert client.get(path, headers=headers).status_code == 200
    assert loaded == []


def test_a_page_past_the_end_still_counts_the_list(client, many, bearer):
    body = client.get("/api/invoices/?page=7&per_page=2", headers=bearer).json
    assert body["items"] == [] and body["total"] == 12 and body["page"] == 7
    body = client.get("/api/invoices/?status=void&page=3", headers=bearer).json
    assert body["items"] == [] and body["total"] == 0
    assert client.get("/invoices?page=9").status_code == 200


def test_the_api_list_keeps_its_fields(client, many, bearer):
    item = client.get("/api/invoices/?status=paid", headers=bearer).json["items"][0]
    assert item == {
        "id": 12,
        "number": "INV-000012",
        "status": "paid",
        "kind": "period",
        "description": "Pro plan",
        "period_start": item["period_start"],
        "period_end": item["period_end"],
        "total": 2900,
        "subtotal": 2900,
        "tax": 0,
        "currency": "USD",
        "total_display": "$29.00",
        "issued_at": item["issued_at"],
        "due_date": item["due_date"],
        "paid_at": None,
    }
