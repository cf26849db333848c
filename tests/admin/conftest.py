"""Fixtures of the staff console's tests."""

import pytest

from tests.conftest import login, utc


@pytest.fixture()
def staff(session, make_user, client, config):
    """A staff member, logged in; the console's clock stands at 2024-03-05 12:00 UTC."""
    config["CLOCK"] = lambda: utc(2024, 3, 5, 12)
    user = make_user(email="staff@example.com", is_staff=True)
    session.commit()
    login(client, user)
    return user
