"""Server keys: staff create them (the secret shown once) and revoke them; both audited."""

from __future__ import annotations

from flask import flash, make_response
from flask_admin import expose
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from .. import tokens
from ..extensions import db
from ..models import SCOPE_READ, SCOPE_WRITE, ServerKey
from ..runtime import now
from .base import StaffModelView, ids_of


class ServerKeyForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired(message="Name the key after the program that uses it."), Length(max=80)]
    )
    scope = SelectField(
        "Scope",
        choices=[
            (SCOPE_READ, "Read: list and read customers, subscriptions, invoices"),
            (SCOPE_WRITE, "Read and write"),
        ],
        default=SCOPE_READ,
    )


class ServerKeyView(StaffModelView):
    can_edit = can_delete = False
    column_list = ("name", "prefix", "scope", "created_by", "created_at", "last_used_at", "revoked_at")
    column_details_list = column_list
    column_filters = ("scope",)
    column_labels = {"prefix": "Starts with"}
    column_default_sort = ("id", True)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The secret is shown on this one answer (never stored, never flashed into the cookie)."""
        form = ServerKeyForm()
        if form.validate_on_submit():
            key, secret = tokens.issue_server_key(
                db.session, form.name.data or "", form.scope.data or SCOPE_READ, now(), actor_id=current_user.id
            )
            response = make_response(self.render("staff/server_key_created.html", key=key, secret=secret))
            response.headers["Cache-Control"] = "no-store"
            return response
        return self.render("staff/server_key_new.html", form=form)

    @action("revoke", "Revoke", "Revoke the selected keys? Programs using them lose access at once.")
    def revoke(self, ids):
        moment = now()
        done = sum(
            tokens.revoke_server_key(db.session, key, moment, actor_id=current_user.id)
            for key in db.session.scalars(select(ServerKey).where(ServerKey.id.in_(ids_of(ids))))
        )
        flash(f"Revoked {done} key(s).", "success")
