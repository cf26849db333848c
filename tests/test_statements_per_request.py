"""Issue 12, speed under load: reads do not write, and no page runs a query per row.

Counts the SQL statements (and commits) each request sends, on SQLite and PostgreSQL.
A page whose count grows with the number of invoices is lazy-loading per row.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from flask import g
from sqlalchemy import event, func, select

from portal.extensions import db
from portal.models import ApiToken, Invoice, InvoiceLine, Payment
from portal.tokens import issue
from tests.conftest import utc


@contextlib.contextmanager
def counted(app):
    """Yields a dict of the statements and commits sent while the block runs."""
    seen = {"statements": [], "commits": 0}

    def on_execute(_conn, _cursor, statement, *_):
        seen["statements"].append(statement)

    def on_commit(_conn):
        seen["commits"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def add_invoices(session, user_id: int, count: int) -> None:
    """`count` more period invoices for the user's subscription, each with a line and a payment."""
    sub_id = session.scalar(select(Invoice.subscription_id).where(Invoice.user_id == user_id))
    already = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.user_id == user_id))
    start = dt.date(2010, 1, 1) + dt.timedelta(days=31 * already)
    for k in range(count):
        inv = Invoice(
            user_id=user_id,
            subscription_id=sub_id,
            description="Pro plan",
            period_start=start + dt.timedelta(days=31 * k),
            period_end=start + dt.timedelta(days=31 * (k + 1)),
            total=2900,
            currency="USD",
            status="paid" if k % 2 else "open",
            issued_at=utc(2020, 1, 1),
            due_date=start,
        )
        session.add(inv)
        session.flush()
        session.add(
            InvoiceLine(
                invoice_id=inv.id, position=1, description="Pro plan", quantity=1, unit_amount=2900, amount=2900
            )
        )
        session.add(
            Payment(
                invoice_id=inv.id,
                provider="demo",
                provider_ref=f"ref-{inv.id}",
                amount=2900,
                currency="USD",
                status="succeeded",
                created_at=utc(2020, 1, 2),
            )
        )
    session.commit()


@pytest.fixture()
def bearer(session, customer):
    _, secret = issue(session, customer, "test", utc(2024, 1, 1))
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


PAGES = [
    "/pricing",
    "/account",
    "/invoices",
    "/invoices?status=paid",
    "/invoices/1",
    "/notifications",
    "/tokens",
    "/api/invoices/",
    "/api/invoices/?per_page=100",
    "/api/invoices/1/",
]


def statements_for(app, client, path: str, headers: dict) -> int:
    assert client.get(path, headers=headers).status_code == 200  # warm: first-use queries
    # The tests' app context outlives requests: start from an empty identity map, and no
    # user cached by Flask-Login on `g` from the first request.
    db.session.remove()
    g.pop("_login_user", None)
    with counted(app) as seen:
        response = client.get(path, headers=headers)
    assert response.status_code == 200
    return len(seen["statements"])


def test_statements_per_page_do_not_grow_with_the_invoices(app, client, session, customer, bearer):
    """A page costs the same number of queries with 3 invoices as with 33."""
    headers = {**bearer}  # the API by token; the pages by the logged-in session
    user_id = customer.id  # the customer object is detached once the first count starts
    add_invoices(session, user_id, 2)  # one open, one paid: no filtered page is empty
    few = {path: statements_for(app, client, path, headers if path.startswith("/api/") else {}) for path in PAGES}
    add_invoices(session, user_id, 30)
    many = {path: statements_for(app, client, path, headers if path.startswith("/api/") else {}) for path in PAGES}
    assert many == few
    # An invoice page also reads its card charges, credit notes and refunds: a fixed few more.
    assert max(many.values()) <= 8, many


def test_an_api_read_by_token_writes_last_use_at_most_once_a_minute(app, client, session, customer, bearer, config):
    clock = {"now": utc(2024, 5, 1, 12, 0, 0)}
    config["CLOCK"] = lambda: clock["now"]

    def call():
        with counted(app) as seen:
            assert client.get("/api/invoices/", headers=bearer).status_code == 200
        writes = [s for s in seen["statements"] if s.lstrip().upper().startswith("UPDATE")]
        session.expire_all()
        return len(writes), seen["commits"], session.scalar(select(ApiToken.last_used_at))

    assert call() == (1, 1, utc(2024, 5, 1, 12, 0, 0))  # first use: recorded
    clock["now"] = utc(2024, 5, 1, 12, 0, 59)
    assert call() == (0, 0, utc(2024, 5, 1, 12, 0, 0))  # within the minute: no write, no commit
    clock["now"] = utc(2024, 5, 1, 12, 1, 1)
    assert call() == (1, 1, utc(2024, 5, 1, 12, 1, 1))  # a minute later: recorded again


def test_a_revoked_token_is_refused_without_writing(app, client, session, customer, bearer):
    token = session.scalar(select(ApiToken))
    token.revoked_at = utc(2024, 1, 2)
    session.commit()
    with counted(app) as seen:
        response = client.get("/api/invoices/", headers=bearer)
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    assert seen["commits"] == 0 and not any(s.lstrip().upper().startswith("UPDATE") for s in seen["statements"])
