"""Where a transaction begins and ends: one per web request, job and command.

The billing core and the services only flush; these are the only places that commit.
A request commits when its answer is a success or a redirect (status < 400) and it
wrote something, and rolls back otherwise (a refused form, a 404, an error), so nothing
is ever half-written.
Code that must undo part of a request and still answer 2xx/3xx (a refused plan change
that flashes its reason) wraps that part in `session.begin_nested()`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

from flask import Flask, Response
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction, scoped_session

from .extensions import db

F = TypeVar("F", bound=Callable[..., Any])


WROTE = "portal.wrote"  # session.info key: this transaction has written something


def end_request(response: Response) -> Response:
    """after_request: commit a successful answer that wrote something, roll back any other.

    A request that only read ends without a COMMIT (its session is closed, which ends
    the read-only transaction): reads never write or commit.
    """
    session = db.session
    if response.status_code >= 400:
        session.rollback()
    elif session.info.get(WROTE) or session.new or session.dirty or session.deleted:
        session.commit()  # a failure here becomes the 500 page (which rolls back)
    return response


@event.listens_for(FlaskSession, "after_flush")
def _flushed(session: FlaskSession, _context: Any) -> None:
    session.info[WROTE] = True


@event.listens_for(FlaskSession, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    """INSERT, UPDATE and DELETE statements run through the session (the core's set-based
    writes) write without a flush."""
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


@event.listens_for(FlaskSession, "after_transaction_end")
def _ended(session: FlaskSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction, not a savepoint inside it
        session.info.pop(WROTE, None)


def init_app(app: Flask) -> None:
    app.after_request(end_request)


@contextmanager
def unit_of_work(app: Flask | None = None) -> Iterator[scoped_session]:
    """A job's or command's transaction: commit at the end, roll back on any error.

    A job, which runs outside any app context, passes its app: the work then runs in
    an app context of its own, whose session is removed when it ends (Flask-SQLAlchemy's
    teardown), so the next job on the worker starts with a clean one.
    """
    with app.app_context() if app is not None else nullcontext():
        try:
            yield db.session
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise


def one_transaction(command: F) -> F:
    """A CLI command in one unit of work (wrap below @click.command / @with_appcontext)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with unit_of_work():
            return command(*args, **kwargs)

    return run  # type: ignore[return-value]
