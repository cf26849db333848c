"""Plans: created and edited with checked fields, archived rather than deleted."""

from __future__ import annotations

import json

from flask import flash
from flask_admin.actions import action
from flask_login import current_user
from sqlalchemy import select
from wtforms import TextAreaField
from wtforms.validators import NumberRange, Regexp

from ..billing import catalog, entitlements
from ..extensions import db
from ..inputs import INT64_MAX
from ..models import Plan
from ..runtime import now
from .base import StaffModelView, ids_of, money


class FeaturesField(TextAreaField):
    """A plan's features as JSON, checked by the core (names, and values true/false, numbers or short text)."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return json.dumps(self.data or {}, indent=2, ensure_ascii=False)

    def process_formdata(self, valuelist) -> None:
        if valuelist:
            try:
                self.data = entitlements.validate_features(valuelist[0])
            except entitlements.FeaturesError as exc:
                self.data = {}
                raise ValueError(str(exc)) from None


class PlanView(StaffModelView):
    can_delete = False  # archive instead: old subscriptions keep their plan
    column_list = ("code", "name", "price", "currency", "interval", "trial_days", "active")
    column_formatters = {"price": money}
    column_filters = ("active", "interval")
    form_columns = (
        "code",
        "name",
        "description",
        "price",
        "currency",
        "interval",
        "trial_days",
        "active",
        "sort_order",
        "features",
    )
    form_overrides = {"features": FeaturesField}
    form_args = {
        "features": {
            "label": "Features and limits (JSON)",
            "description": 'e.g. {"seats": 10, "priority_support": true}; true/false, whole numbers or short text.',
        },
        # Codes go in URLs, API bodies and CSV exports: plain lower-case ASCII only (\Z: no trailing newline).
        "code": {
            "validators": [
                Regexp(
                    r"\A[a-z0-9_-]{1,32}\Z",
                    message=(
                        "A plan code is 1 to 32 lower-case letters (a-z), digits, '-' or '_', "
                        "e.g. 'team' or 'pro-2024'."
                    ),
                )
            ]
        },
        "price": {
            "label": "Price (minor units, e.g. cents)",
            "validators": [
                NumberRange(min=0, message="A price cannot be negative."),
                NumberRange(max=INT64_MAX, message=f"A price can be at most {INT64_MAX:,} minor units."),
            ],
        },
        "currency": {
            "validators": [Regexp(r"\A[A-Z]{3}\Z", message="A currency is a three-letter code in capitals, e.g. USD.")]
        },
        "trial_days": {"validators": [NumberRange(min=0, max=365)]},
        "sort_order": {
            "validators": [
                NumberRange(
                    min=-(2**31),
                    max=2**31 - 1,
                    message="The sort order must be a whole number from -2,147,483,648 to 2,147,483,647.",
                )
            ]
        },
    }
    form_choices = {"interval": [("month", "Monthly"), ("year", "Yearly")]}

    @action("archive", "Archive", "Archive the selected plans? Existing subscriptions keep them.")
    def archive(self, ids):
        moment = now()
        done = sum(
            catalog.archive(db.session, plan, moment, current_user.id)
            for plan in db.session.scalars(select(Plan).where(Plan.id.in_(ids_of(ids))))
        )
        flash(f"Archived {done} plan(s).", "success")
