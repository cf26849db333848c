"""API tokens: random secrets shown once, stored only as SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import bindparam, or_, select, update

from .models import ApiToken, DbSession, User

PREFIX = "sbp_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: DbSession, user: User, name: str, now: dt.datetime) -> tuple[ApiToken, str]:
    """A new token; the plain secret is returned once and never stored."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id, name=name.strip() or "API token", token_hash=digest(secret), prefix=secret[:10], created_at=now
    )
    session.add(token)
    session.flush()
    return token, secret


# How stale last_used_at may get: reads must not write (and commit) on every request.
TOUCH_EVERY = dt.timedelta(minutes=1)


# Built once: every API call by token runs them, and building a statement costs more than running it.
_TOKEN_USER = (
    select(User, ApiToken.id, ApiToken.last_used_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)
_TOUCH = (
    update(ApiToken)
    .where(
        ApiToken.id == bindparam("token_id"),
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < bindparam("cutoff")),
    )
    .values(last_used_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


def authenticate(session: DbSession, secret: str, now: dt.datetime) -> User | None:
    """The token's user; None if the token is unknown or revoked.

    One query finds the token and its user. last_used_at is written at most once a
    TOUCH_EVERY, by a conditional UPDATE (of two concurrent requests only one writes);
    the caller's unit of work commits it.
    """
    row = session.execute(_TOKEN_USER, {"token_hash": digest(secret)}).first()
    if row is None:
        return None
    user: User
    user, token_id, last_used = row
    cutoff = now - TOUCH_EVERY
    if last_used is None or last_used < cutoff:
        session.execute(_TOUCH, {"token_id": token_id, "cutoff": cutoff, "now": now})
    return user


def revoke(session: DbSession, user_id: int, token_id: int, now: dt.datetime) -> bool:
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if token is None:
        return False
    token.revoked_at = token.revoked_at or now
    session.flush()
    return True
