"""What every console view shares: staff-only access, the model view base, formatters, ids."""

from __future__ import annotations

import datetime as dt

from flask import abort, redirect, request, url_for
from flask_admin.contrib.sqla import ModelView
from flask_admin.model import typefmt
from flask_login import current_user
from flask_wtf import FlaskForm

from ..billing import audit
from ..billing.money import format_money
from ..extensions import db
from ..inputs import MAX_PAGE, BadInput, int64
from ..runtime import now


class StaffOnly:
    """Staff see the console; customers get 403, visitors the login page."""

    def is_accessible(self):
        return current_user.is_authenticated and current_user.is_staff

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403)
        return redirect(url_for("auth.login", next=request.full_path))


def ids_of(ids) -> list[int]:
    """Action ids arrive as strings; PostgreSQL will not compare them with BIGINT.
    Only ids a BIGINT can hold: '²' or 2**63 name no row (and must not be a 500)."""
    out = []
    for i in ids:
        try:
            out.append(int64(str(i)))
        except ValueError:
            continue
    return out


def money(view, context, model, name):
    """Column formatter: an amount in minor units, in the row's currency."""
    return format_money(getattr(model, name), model.currency)


def _moment(_view, value, _name=None) -> str:
    """Timestamps as people read them, in UTC: "Nov 25, 2026 20:40 UTC"."""
    return value.strftime("%b %-d, %Y %H:%M UTC")


def _day(_view, value, _name=None) -> str:
    return value.strftime("%b %-d, %Y")


STAFF_FORMATTERS = {**typefmt.BASE_FORMATTERS, dt.datetime: _moment, dt.date: _day}


def record_staff_action(action_name: str, obj, detail: str = "") -> None:
    """An audit entry for what the signed-in staff member did (the request's unit of work saves it)."""
    audit.record(db.session, current_user.id, action_name, obj, detail, now())


class StaffForm(FlaskForm):
    """CSRF on every form, as in the portal; and the edited row kept where Flask-Admin's
    unique check looks for it (FlaskForm does not keep it: every edit was "Already exists")."""

    def __init__(self, *args, obj=None, **kwargs):
        self._obj = obj
        super().__init__(*args, obj=obj, **kwargs)


class StaffModelView(StaffOnly, ModelView):
    form_base_class = StaffForm
    can_view_details = True
    named_filter_urls = True  # ?flt0_status_equals=overdue: readable, bookmarkable
    page_size = 50
    column_type_formatters = column_type_formatters_detail = STAFF_FORMATTERS

    def get_one(self, id):
        """?id= of the edit and details pages: an id no BIGINT holds is "no such record"."""
        try:
            int64(str(id))
        except ValueError:
            return None
        return super().get_one(id)

    def _get_list_extra_args(self):
        args = super()._get_list_extra_args()
        if args.page is not None and not 0 <= args.page < MAX_PAGE:
            raise BadInput("invalid_page", f"'page' must be a whole number from 0 to {MAX_PAGE - 1:,}.")
        return args

    def on_model_change(self, form, model, is_created):
        """Audit a create or edit before Flask-Admin commits it: the change and its entry are
        saved together, or neither is (a new row is flushed first so the entry names its id)."""
        if is_created:
            db.session.flush()
        record_staff_action(
            "create" if is_created else "edit",
            model,
            ", ".join(f"{f.name}={f.data!r}" for f in form if f.name != "csrf_token"),
        )


class ReadOnlyView(StaffModelView):
    can_create = can_edit = can_delete = False
