"""API tokens and server keys: random secrets shown once, stored only as SHA-256.

A customer's token (`sbp_…`) acts as that customer; a server key (`sbk_…`), created by
staff, acts for the company's own programs on any customer, within its scope. Both are
minted, hashed, looked up and touched by the same code below.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import bindparam, or_, select, update

from .billing import audit
from .models import SCOPE_READ, SCOPE_WRITE, ApiToken, DbSession, ServerKey, User

PREFIX = "sbp_"
SERVER_PREFIX = "sbk_"
SCOPES = (SCOPE_READ, SCOPE_WRITE)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mint(prefix: str) -> tuple[str, dict]:
    """A new secret and the columns stored for it (its digest and a prefix people can recognise)."""
    secret = prefix + secrets.token_urlsafe(32)
    return secret, {"token_hash": digest(secret), "prefix": secret[:10]}


def issue(session: DbSession, user: User, name: str, now: dt.datetime) -> tuple[ApiToken, str]:
    """A new token; the plain secret is returned once and never stored."""
    secret, stored = _mint(PREFIX)
    token = ApiToken(user_id=user.id, name=name.strip() or "API token", created_at=now, **stored)
    session.add(token)
    session.flush()
    return token, secret


def issue_server_key(
    session: DbSession, name: str, scope: str, now: dt.datetime, *, actor_id: int
) -> tuple[ServerKey, str]:
    """A new server key, created by staff (audited); the plain secret is returned once."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    secret, stored = _mint(SERVER_PREFIX)
    key = ServerKey(
        name=name.strip()[:80] or "Server key", scope=scope, created_by_id=actor_id, created_at=now, **stored
    )
    session.add(key)
    session.flush()
    audit.record(session, actor_id, "create_server_key", key, f"name={key.name!r}, scope={scope}", now)
    return key, secret


def revoke_server_key(session: DbSession, key: ServerKey, now: dt.datetime, *, actor_id: int) -> bool:
    """Revoke a server key (audited); False if it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = now
    audit.record(session, actor_id, "revoke_server_key", key, f"name={key.name!r}", now)
    session.flush()
    return True


# How stale last_used_at may get: reads must not write (and commit) on every request.
TOUCH_EVERY = dt.timedelta(minutes=1)


# Built once: every API call by token runs them, and building a statement costs more than running it.
_TOKEN_USER = (
    select(User, ApiToken.id, ApiToken.last_used_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)
_SERVER_KEY = select(ServerKey, ServerKey.id, ServerKey.last_used_at).where(
    ServerKey.token_hash == bindparam("token_hash"), ServerKey.revoked_at.is_(None)
)


def _touch(model: type[ApiToken] | type[ServerKey]):
    return (
        update(model)
        .where(
            model.id == bindparam("token_id"),
            or_(model.last_used_at.is_(None), model.last_used_at < bindparam("cutoff")),
        )
        .values(last_used_at=bindparam("now"))
        .execution_options(synchronize_session=False)
    )


_TOUCH = {ApiToken: _touch(ApiToken), ServerKey: _touch(ServerKey)}


def _lookup(session: DbSession, query, model, secret: str, now: dt.datetime):
    """The row `query` finds for this secret (unrevoked), its last use touched; None if unknown."""
    row = session.execute(query, {"token_hash": digest(secret)}).first()
    if row is None:
        return None
    found, token_id, last_used = row
    cutoff = now - TOUCH_EVERY
    if last_used is None or last_used < cutoff:
        session.execute(_TOUCH[model], {"token_id": token_id, "cutoff": cutoff, "now": now})
    return found


def authenticate(session: DbSession, secret: str, now: dt.datetime) -> User | None:
    """The token's user; None if the token is unknown or revoked.

    One query finds the token and its user. last_used_at is written at most once a
    TOUCH_EVERY, by a conditional UPDATE (of two concurrent requests only one writes);
    the caller's unit of work commits it.
    """
    user: User | None = _lookup(session, _TOKEN_USER, ApiToken, secret, now)
    return user


def authenticate_server_key(session: DbSession, secret: str, now: dt.datetime) -> ServerKey | None:
    """The server key with this secret; None if unknown or revoked (last use touched like a token's)."""
    key: ServerKey | None = _lookup(session, _SERVER_KEY, ServerKey, secret, now)
    return key


def authenticate_any(session: DbSession, secret: str, now: dt.datetime) -> User | ServerKey | None:
    """A bearer secret: a server key by its prefix, else a customer's token."""
    if secret.startswith(SERVER_PREFIX):
        return authenticate_server_key(session, secret, now)
    return authenticate(session, secret, now)


def revoke(session: DbSession, user_id: int, token_id: int, now: dt.datetime) -> bool:
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if token is None:
        return False
    token.revoked_at = token.revoked_at or now
    session.flush()
    return True
