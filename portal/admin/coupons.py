"""Coupons, promotion codes and their redemptions: created, paused and unpaused by staff, audited.

A coupon's discount (percent or amount, currency, duration) is fixed once created: the
redemptions already made keep the terms the customer accepted. Staff may rename it, change
its expiry, its maximum, its plans, and pause it.
"""

from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_login import current_user
from sqlalchemy import select
from wtforms.validators import NumberRange, Optional, ValidationError

from ..billing import coupons
from ..billing.taxes import format_percent
from ..extensions import db
from ..models import COUPON_DURATIONS, Coupon, PromotionCode
from ..runtime import now
from .base import ReadOnlyView, StaffModelView, ids_of


def _off(view, context, model, name):
    return coupons.describe(model)


def _redeemed(view, context, model, name):
    limit = f" / {model.max_redemptions}" if model.max_redemptions is not None else ""
    return f"{model.times_redeemed}{limit}"


def _percent(view, context, model, name):
    return "" if model.percent_off is None else f"{format_percent(model.percent_off)} %"


class _Pausable:
    model_class: type[Coupon] | type[PromotionCode]

    def _set_active(self, ids, active: bool) -> None:
        moment = now()
        model = self.model_class
        rows: list[Coupon | PromotionCode] = list(db.session.scalars(select(model).where(model.id.in_(ids_of(ids)))))
        for row in rows:
            if row.active != active:
                coupons.set_active(db.session, row, active, moment, current_user.id)
        flash(f"{'Unpaused' if active else 'Paused'} {len(rows)}.", "success")

    @action("pause", "Pause", "Pause the selected? No new redemptions until unpaused; discounts given stay.")
    def pause(self, ids):
        self._set_active(ids, False)

    @action("unpause", "Unpause", "Unpause the selected?")
    def unpause(self, ids):
        self._set_active(ids, True)


class CouponView(_Pausable, StaffModelView):
    model_class = Coupon
    can_delete = False  # pause instead: invoices name their coupon
    column_list = ("name", "percent_off", "duration", "expires_at", "times_redeemed", "active", "created_at")
    column_labels = {"percent_off": "Discount", "times_redeemed": "Redeemed"}
    column_formatters = {"percent_off": _off, "times_redeemed": _redeemed}
    column_filters = ("active", "duration")
    form_columns = (
        "name",
        "percent_off",
        "amount_off",
        "currency",
        "duration",
        "duration_periods",
        "expires_at",
        "max_redemptions",
        "plans",
        "active",
    )
    form_edit_rules = ("name", "expires_at", "max_redemptions", "plans", "active")
    form_choices = {"duration": [(d, d.capitalize()) for d in COUPON_DURATIONS]}
    form_args = {
        "name": {"description": "On the invoice line: 'Discount: <name>'"},
        "percent_off": {
            "label": "Percent off",
            "places": 4,
            "description": "e.g. 12.5; leave empty for a fixed amount",
            "validators": [Optional(), NumberRange(min=0, max=100)],
        },
        "amount_off": {
            "label": "Amount off (minor units, e.g. cents)",
            "validators": [Optional(), NumberRange(min=1, max=2**62)],
        },
        "currency": {"description": "For an amount off: it applies to plans in this currency"},
        "duration_periods": {
            "label": "Billing periods (repeating)",
            "validators": [Optional(), NumberRange(min=1, max=1200)],
        },
        "expires_at": {"label": "Redeemable until (UTC)"},
        "max_redemptions": {"validators": [Optional(), NumberRange(min=1, max=2**31 - 1)]},
        "plans": {"description": "None: every plan"},
    }

    def on_model_change(self, form, model, is_created):
        if model.currency:
            model.currency = model.currency.strip().upper()
        problem = coupons.coupon_problem(model)
        if problem:
            raise ValidationError(problem)
        super().on_model_change(form, model, is_created)


class PromotionCodeView(_Pausable, StaffModelView):
    model_class = PromotionCode
    can_delete = False
    column_list = ("code", "coupon", "expires_at", "times_redeemed", "active", "created_at")
    column_labels = {"times_redeemed": "Redeemed"}
    column_formatters = {"times_redeemed": _redeemed}
    column_searchable_list = ("code",)
    column_filters = ("active",)
    form_columns = ("code", "coupon", "expires_at", "max_redemptions", "active")
    form_edit_rules = ("expires_at", "max_redemptions", "active")
    form_args = {
        "code": {"description": "What customers type; any case, stored in capitals"},
        "expires_at": {"label": "Redeemable until (UTC)"},
        "max_redemptions": {"validators": [Optional(), NumberRange(min=1, max=2**31 - 1)]},
    }

    def on_model_change(self, form, model, is_created):
        problem = coupons.code_problem(model)
        if problem:
            raise ValidationError(problem)
        if is_created:
            with db.session.no_autoflush:
                taken = db.session.scalar(select(PromotionCode.id).where(PromotionCode.code == model.code))
            if taken is not None:
                raise ValidationError(f"The code {model.code} exists already.")
        super().on_model_change(form, model, is_created)


class CouponRedemptionView(ReadOnlyView):
    column_list = ("redeemed_at", "coupon", "promotion_code", "user", "subscription", "first_period", "end_period")
    column_labels = {"first_period": "From period", "end_period": "Until period (excl.)"}
    column_default_sort = ("redeemed_at", True)
    column_filters = ("coupon.name", "promotion_code.code", "user.email")
