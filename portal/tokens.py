"""API tokens: random secrets shown once, stored only as SHA-256."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ApiToken, User

PREFIX = "sbp_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: User, name: str, now: dt.datetime) -> tuple[ApiToken, str]:
    """A new token; the plain secret is returned once and never stored."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name.strip() or "API token", token_hash=digest(secret),
                     prefix=secret[:10], created_at=now)
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str, now: dt.datetime) -> User | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret),
                                                  ApiToken.revoked_at.is_(None)))
    if token is None:
        return None
    token.last_used_at = now
    return token.user


def revoke(session: Session, user_id: int, token_id: int, now: dt.datetime) -> bool:
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if token is None:
        return False
    token.revoked_at = token.revoked_at or now
    session.flush()
    return True
