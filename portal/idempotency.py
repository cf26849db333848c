"""Idempotency keys: a POST sent again with the same Idempotency-Key acts once.

The first request claims (principal, key) by inserting a row, in its own unit of work,
before it acts; the row then keeps its answer. On PostgreSQL a concurrent duplicate's
INSERT waits on the unique constraint until the first commits, then finds the answer
and replays it. A request that fails (4xx/5xx) rolls back, its claim with it, so a retry
runs again. Keys are forgotten after TTL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .models import DbSession, IdempotencyKey

TTL = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    """The first answer given to this key."""

    status: int
    body: str


class KeyReused(Exception):
    """The key was used for another request, or its first request has not finished."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the exact body."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def claim(session: DbSession, principal: str, key: str, print_: str, now: dt.datetime) -> IdempotencyKey | Replay:
    """Claim the key for this request (the row to `remember` its answer in), or the earlier answer.

    Raises KeyReused when the key belongs to a different request (422) or to one still running (409).
    """
    forget_expired(session, now)
    row = IdempotencyKey(principal=principal, key=key, fingerprint=print_, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        first = session.scalar(
            select(IdempotencyKey)
            .where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        )
        if first is not None and first.fingerprint != print_:
            raise KeyReused(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used for a different request (another path or body); use a new key.",
            ) from None
        if first is None or first.status_code is None or first.response_body is None:
            raise KeyReused(
                409, "idempotency_key_in_use", "A request with this Idempotency-Key is still running; retry shortly."
            ) from None
        return Replay(first.status_code, first.response_body)
    return row


def remember(session: DbSession, row: IdempotencyKey, status: int, body: str) -> None:
    """Keep the answer of the request that claimed `row` (saved with the request's own changes)."""
    row.status_code, row.response_body = status, body
    session.flush()


def forget_expired(session: DbSession, now: dt.datetime) -> None:
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - TTL))
