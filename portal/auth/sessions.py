"""Server-side login sessions: one row per logged-in browser.

The Flask session (a signed cookie) carries Flask-Login's user id and a random
session id; the database keeps only the id's SHA-256. The user loader looks
both up in one query, so ending a session is deleting its row: a cookie
captured before log-out, or before a password change on another device, then
opens nothing, neither a page nor the API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app, session
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, select

from ..billing.sql import rows_changed
from ..models import DbSession, LoginSession, User

SESSION_KEY = "_sid"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lifetime() -> dt.timedelta:
    """A session ends at the latest after PERMANENT_SESSION_LIFETIME (31 days by default)."""
    return current_app.permanent_session_lifetime


def create(db: DbSession, user: User, now: dt.datetime) -> str:
    """A new session row for `user`; returns the secret id the cookie carries."""
    token = secrets.token_urlsafe(32)
    # Rows of sessions that were never logged out of go once they are too old.
    db.execute(delete(LoginSession).where(LoginSession.user_id == user.id, LoginSession.created_at < now - lifetime()))
    db.add(LoginSession(user_id=user.id, token_hash=digest(token), created_at=now))
    db.flush()
    return token


def start(db: DbSession, user: User, now: dt.datetime) -> None:
    """Log `user` in on this browser (the caller commits)."""
    previous = session.pop(SESSION_KEY, None)  # a second log-in replaces this browser's session
    if previous:
        db.execute(delete(LoginSession).where(LoginSession.token_hash == digest(previous)))
    token = create(db, user, now)
    login_user(user)
    session[SESSION_KEY] = token


def end(db: DbSession) -> None:
    """Log this browser out and forget its session for good (the caller commits)."""
    token = session.pop(SESSION_KEY, None)
    if token:
        db.execute(delete(LoginSession).where(LoginSession.token_hash == digest(token)))
    logout_user()


def end_others(db: DbSession, user_id: int) -> int:
    """End every session of the user but this browser's (after a password change)."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    token = session.get(SESSION_KEY)
    if token:
        query = query.where(LoginSession.token_hash != digest(token))
    return rows_changed(db, query)


def end_all(db: DbSession, user_id: int) -> int:
    """End every session of the user (a password set from a link, or by a command)."""
    return rows_changed(db, delete(LoginSession).where(LoginSession.user_id == user_id))


# Built once: this runs on every signed-in request, and building a select anew costs
# the web process more than the database takes to answer it.
_LIVE_SESSION_USER = (
    select(User)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        LoginSession.token_hash == bindparam("token_hash"),
        User.id == bindparam("user_id"),
        LoginSession.created_at >= bindparam("since"),
    )
)


def load(db: DbSession, user_id: str, now: dt.datetime) -> User | None:
    """The user of this browser's live session, in one query; None logs the browser out."""
    token = session.get(SESSION_KEY)
    if not token or not (user_id.isascii() and user_id.isdigit()):
        return None
    return db.scalar(
        _LIVE_SESSION_USER, {"token_hash": digest(token), "user_id": int(user_id), "since": now - lifetime()}
    )
