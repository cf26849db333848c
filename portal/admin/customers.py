"""Users: customers and staff, searchable by email; never deleted from the console."""

from __future__ import annotations

from .base import StaffModelView


class UserView(StaffModelView):
    can_delete = False
    column_list = ("email", "name", "is_staff", "created_at")
    column_searchable_list = ("email", "name")
    column_filters = ("is_staff",)
    column_details_exclude_list = ("password_hash",)
    form_columns = ("email", "name", "is_staff")
