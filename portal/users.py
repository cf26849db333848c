"""Users: the canonical form of an address, the lookup by it, and the three ways an
account is made (a customer's sign-up, a staff account from the command line, a
customer from a subscriptions import).

Plain functions on a session: they flush; the request, command or job commits.
"""

from __future__ import annotations

import datetime as dt

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from .auth.sessions import end_all
from .billing import events
from .models import DbSession, User


def normalize_email(raw: str) -> str:
    """The canonical (lower-case) form of an address, or ValueError with the reason."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def by_email(session: DbSession, email: str) -> User | None:
    """The user with this address, however it was typed (case, surrounding spaces)."""
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def sign_up(session: DbSession, email: str, name: str, password: str, now: dt.datetime) -> tuple[User, bool]:
    """A new account that waits for its emailed confirmation, and True; or the account
    the address already has, and False. ValueError when the address is not valid.

    The password is hashed either way, so both answers take the same time.
    """
    email = normalize_email(email)
    password_hash = generate_password_hash(password)
    if (existing := by_email(session, email)) is not None:
        return existing, False
    user = User(email=email, name=name.strip(), password_hash=password_hash, created_at=now, awaiting_confirmation=True)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:  # the same address signed up at the same moment: it is there now
        return session.scalars(select(User).where(User.email == email)).one(), False
    events.emit(session, events.CUSTOMER_CREATED, events.customer_data(user), now)
    return user, True


def create_staff(session: DbSession, email: str, password: str, now: dt.datetime) -> User:
    """A staff account with this password, made or promoted from an existing user;
    the new password ends every session. ValueError when the address is not valid."""
    email = normalize_email(email)
    user = by_email(session, email)
    if user is None:
        user = User(email=email, name="Staff", created_at=now)
        session.add(user)
    user.is_staff = True
    user.password_hash = generate_password_hash(password)
    session.flush()
    end_all(session, user.id)
    return user


def ensure_customer(session: DbSession, email: str, now: dt.datetime) -> tuple[User, bool]:
    """The user with this address, or a new customer without a password (who sets one
    from an emailed link), and whether it was made. ValueError when the address is not valid."""
    email = normalize_email(email)
    if (user := by_email(session, email)) is not None:
        return user, False
    user = User(email=email, created_at=now)
    session.add(user)
    session.flush()
    events.emit(session, events.CUSTOMER_CREATED, events.customer_data(user), now)
    return user, True
