"""The users service: one canonical address, and the three ways an account is made."""

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from portal import users
from portal.auth import sessions
from portal.models import LoginSession, User
from tests.conftest import utc

NOW = utc(2024, 3, 1, 12)


def count_users(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def test_normalize_email_lower_cases_and_strips():
    assert users.normalize_email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"


@pytest.mark.parametrize("raw", ["", "nobody", "a@", "@example.com", "a b@example.com"])
def test_normalize_email_says_why_an_address_is_refused(raw):
    with pytest.raises(ValueError, match=r"\w"):
        users.normalize_email(raw)


def test_by_email_finds_the_user_however_the_address_is_typed(session, make_user):
    ada = make_user(email="ada@example.com")
    assert users.by_email(session, " ADA@example.com ") is ada
    assert users.by_email(session, "bob@example.com") is None


def test_sign_up_makes_an_account_awaiting_confirmation(session):
    user, new = users.sign_up(session, "Ada@Example.com", "  Ada ", "correct horse", NOW)
    assert new and user.id is not None
    assert (user.email, user.name, user.created_at) == ("ada@example.com", "Ada", NOW)
    assert user.awaiting_confirmation and not user.is_staff
    assert check_password_hash(user.password_hash, "correct horse")


def test_sign_up_with_a_known_address_returns_its_account_unchanged(session, make_user):
    ada = make_user(email="ada@example.com", name="Ada")
    before = ada.password_hash
    user, new = users.sign_up(session, "ADA@example.com", "Someone", "another password", NOW)
    assert (user, new) == (ada, False)
    assert (ada.name, ada.password_hash, ada.awaiting_confirmation) == ("Ada", before, False)
    assert count_users(session) == 1


def test_sign_up_refuses_an_invalid_address(session):
    with pytest.raises(ValueError):
        users.sign_up(session, "nobody", "", "correct horse", NOW)
    assert count_users(session) == 0


def test_sign_up_of_an_address_taken_at_the_same_moment_undoes_only_its_savepoint(session, make_user, monkeypatch):
    ada = make_user(email="ada@example.com")
    monkeypatch.setattr(users, "by_email", lambda *_: None)  # looked up before the other sign-up committed
    session.add(User(email="kept@example.com"))  # earlier work of the same transaction
    session.flush()
    user, new = users.sign_up(session, "ada@example.com", "Ada", "correct horse", NOW)
    assert (user, new) == (ada, False)
    session.commit()
    assert sorted(session.scalars(select(User.email))) == ["ada@example.com", "kept@example.com"]


def test_create_staff_makes_a_staff_account(session):
    user = users.create_staff(session, "Boss@Example.com", "s3cret-pass", NOW)
    assert (user.email, user.name, user.is_staff, user.created_at) == ("boss@example.com", "Staff", True, NOW)
    assert check_password_hash(user.password_hash, "s3cret-pass")


def test_create_staff_promotes_a_user_sets_the_password_and_ends_every_session(session, make_user):
    ada = make_user(email="ada@example.com", name="Ada")
    sessions.create(session, ada, NOW)
    sessions.create(session, ada, NOW)
    user = users.create_staff(session, "ada@example.com", "new staff password", NOW)
    assert user is ada and ada.is_staff and ada.name == "Ada"
    assert check_password_hash(ada.password_hash, "new staff password")
    assert session.scalar(select(func.count()).select_from(LoginSession)) == 0
    assert count_users(session) == 1


def test_create_staff_refuses_an_invalid_address(session):
    with pytest.raises(ValueError):
        users.create_staff(session, "nobody", "s3cret-pass", NOW)


def test_ensure_customer_makes_a_customer_without_a_password(session):
    user, new = users.ensure_customer(session, " Bob@Example.com", NOW)
    assert new and user.id is not None
    assert (user.email, user.password_hash, user.is_staff, user.awaiting_confirmation) == (
        "bob@example.com",
        None,
        False,
        False,
    )
    assert user.created_at == NOW


def test_ensure_customer_finds_the_existing_user(session, make_user):
    bob = make_user(email="bob@example.com")
    assert users.ensure_customer(session, "BOB@example.com", NOW) == (bob, False)
    assert count_users(session) == 1


def test_ensure_customer_refuses_an_invalid_address(session):
    with pytest.raises(ValueError):
        users.ensure_customer(session, "bob@", NOW)
