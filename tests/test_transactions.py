"""One unit of work per request (portal/transactions.py): commit a successful answer that
wrote, roll back any other, and never commit a request that only read."""

from __future__ import annotations

import pytest
from flask import abort
from sqlalchemy import event, select, update

from portal.app import create_app
from portal.extensions import db
from portal.models import Plan
from tests.conftest import TEST_CONFIG


@pytest.fixture(scope="module")
def uow_app(app):
    """An app of its own on the tests' database, with one more route: its requests run in
    their own app context and session, as in production (not the tests' shared one)."""
    own = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": app.config["TEST_DATABASE_URI"],
            "SQLALCHEMY_ENGINE_OPTIONS": app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        }
    )

    @own.post("/_uow/<int:status>/<how>")
    def rename(status: int, how: str):
        plan = db.session.scalar(select(Plan).where(Plan.code == "basic"))
        if how == "orm":
            plan.name = "Renamed"
        elif how == "core":  # a set-based write: no ORM flush involved
            db.session.execute(update(Plan).where(Plan.code == "basic").values(name="Renamed"))
        elif how == "savepoint":  # written, then a savepoint inside the request rolls back
            plan.name = "Renamed"
            db.session.flush()
            try:
                with db.session.begin_nested():
                    db.session.execute(update(Plan).where(Plan.code == "pro").values(name="Lost"))
                    raise ValueError("refused")
            except ValueError:
                pass
        elif how == "savepoint-first":  # the savepoint is the transaction's first write
            with db.session.begin_nested():
                plan.name = "Renamed"
        if status >= 400:
            abort(status)
        return "done", status

    yield own
    with own.app_context():
        db.engine.dispose()


@pytest.fixture()
def client(uow_app, session):
    return uow_app.test_client()


def commits_during(app, call):
    seen = []
    listener = lambda conn: seen.append(1)  # noqa: E731
    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", listener)
    try:
        call()
    finally:
        event.remove(engine, "commit", listener)
    return len(seen)


def name_of(session, code):
    session.expire_all()
    return session.scalar(select(Plan.name).where(Plan.code == code))


@pytest.mark.parametrize("how", ["orm", "core", "savepoint"])
def test_a_successful_answer_that_wrote_is_committed(client, session, how):
    assert client.post(f"/_uow/200/{how}").status_code == 200
    session.rollback()  # whatever is not committed is gone now
    assert name_of(session, "basic") == "Renamed"
    assert name_of(session, "pro") == "Pro"  # the savepoint's write was undone


@pytest.mark.parametrize("status", [400, 404, 409, 422])
@pytest.mark.parametrize("how", ["orm", "savepoint-first"])
def test_an_error_answer_writes_nothing(client, session, status, how):
    """Even what a savepoint released before the error (SQLite's driver would commit a
    savepoint it opened outside a transaction)."""
    assert client.post(f"/_uow/{status}/{how}").status_code == status
    session.rollback()
    assert name_of(session, "basic") == "Basic"


def test_a_request_that_only_reads_does_not_commit(uow_app, client, session):
    assert commits_during(uow_app, lambda: client.post("/_uow/200/read")) == 0
    assert commits_during(uow_app, lambda: client.post("/_uow/200/core")) == 1
