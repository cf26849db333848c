"""Plans: created and edited with checked fields, archived rather than deleted."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import IntegerField, RadioField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Regexp

from ..billing import catalog, entitlements, pricing
from ..billing.errors import BillingError
from ..billing.money import format_money
from ..extensions import db
from ..inputs import INT64_MAX, int64
from ..models import SUB_CANCELED, Plan, Subscription
from ..runtime import billing_settings, now
from .base import StaffModelView, ids_of, money


class PriceChangeForm(FlaskForm):
    price = IntegerField(
        "New price (minor units, e.g. cents)",
        validators=[
            InputRequired(message="Enter the new price."),
            NumberRange(min=0, max=INT64_MAX, message=f"A price is a whole number from 0 to {INT64_MAX:,}."),
        ],
    )
    mode = RadioField(
        "Who pays the new price",
        choices=[
            (pricing.NEW_ONLY, "New subscribers only: existing subscribers keep the price they pay"),
            (pricing.EXISTING, "Existing subscribers too, from their next period after the notice period (mailed now)"),
        ],
        validators=[DataRequired(message="Choose who pays the new price.")],
    )


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
    column_formatters = {
        "price": lambda v, c, m, n: Markup('{} <a href="{}">change</a>').format(
            money(v, c, m, n), url_for(".price_view", id=m.id)
        )
    }
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

    def edit_form(self, obj=None):
        """The price is not edited here: the price-change page says who pays it and from when."""
        form = super().edit_form(obj)
        del form.price
        return form

    @expose("/price/", methods=("GET", "POST"))
    def price_view(self):
        plan = db.session.get(Plan, request.args.get("id", type=int64) or 0) or abort(404)
        form = PriceChangeForm()
        settings = billing_settings()
        if form.validate_on_submit():
            try:
                with db.session.begin_nested():  # a refused change leaves nothing behind
                    done = pricing.change_price(
                        db.session, plan, form.price.data, form.mode.data, now(), settings, actor_id=current_user.id
                    )
            except BillingError as exc:
                flash(exc.message, "error")
            else:
                new = format_money(done.new_price, plan.currency)
                if done.mode == pricing.EXISTING:
                    flash(
                        f"{plan.name} now costs {new}. {done.notified} subscriber(s) notified; their price changes "
                        f"from their first period starting on or after {done.applies_from:%b %-d, %Y}.",
                        "success",
                    )
                else:
                    flash(f"{plan.name} costs {new} for new subscribers; {done.subscribers} keep theirs.", "success")
                return redirect(url_for(".index_view"))
        subscribers = db.session.scalar(
            select(func.count()).where(Subscription.plan_id == plan.id, Subscription.status != SUB_CANCELED)
        )
        return self.render(
            "staff/plan_price.html",
            plan=plan,
            form=form,
            subscribers=subscribers,
            notice_days=settings.price_change_notice_days,
        )
