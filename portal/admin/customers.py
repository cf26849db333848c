"""Users: customers and staff, searchable by email; never deleted from the console.

Accounts are created by signing up, by the import or by `flask users create-staff`
(portal/users.py), never here; an edited address is checked and kept canonical the
same way.
"""

from __future__ import annotations

from wtforms import ValidationError

from .. import users
from .base import StaffModelView


def canonical_email(_form, field) -> None:
    """The address as sign-up would store it (lower case, valid), or the reason it is not one."""
    try:
        field.data = users.normalize_email(field.data or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class UserView(StaffModelView):
    can_create = can_delete = False
    column_list = ("email", "name", "is_staff", "created_at")
    column_searchable_list = ("email", "name")
    column_filters = ("is_staff",)
    column_details_exclude_list = ("password_hash",)
    form_columns = ("email", "name", "is_staff")
    form_args = {"email": {"validators": [canonical_email]}}
