"""Subscriptions: cancel in bulk, change a plan; the core writes each action's audit entry."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import BooleanField, SelectField
from wtforms.validators import DataRequired

from ..billing.collection import set_collection_method
from ..billing.errors import BillingError
from ..billing.money import format_money
from ..billing.statuses import SUBSCRIPTION_LABELS
from ..billing.subscriptions import cancel, change_plan, pause, unpause
from ..extensions import db
from ..inputs import int64
from ..models import Plan, Subscription
from ..runtime import billing_settings, now
from .base import StaffModelView, ids_of


class ChangePlanForm(FlaskForm):
    plan = SelectField("New plan", validators=[DataRequired()])
    at_once = BooleanField("Yearly to monthly: start now instead of when the paid year ends")


class CollectionForm(FlaskForm):
    method = SelectField(
        "Collection method",
        choices=[
            ("charge_automatically", "Charge the saved card automatically"),
            ("send_invoice", "Send the invoice; the customer pays it"),
        ],
        validators=[DataRequired()],
    )


class SubscriptionView(StaffModelView):
    can_create = can_edit = can_delete = False
    column_list = (
        "id",
        "user",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "pending_plan",
        "paused_at",
        "collection_method",
    )
    column_filters = ("status", "plan.code", "cancel_at_period_end", "user.email")
    column_choices = {"status": list(SUBSCRIPTION_LABELS.items())}
    column_searchable_list = ("user.email",)
    column_formatters = {
        "id": lambda v, c, m, n: Markup(f'<a href="{url_for(".change_plan_view", id=m.id)}">#{m.id}</a>')
    }

    def _each(self, ids, verb, change):
        """Apply `change` to each selected subscription; a refusal undoes that one only."""
        done = 0
        for sub in db.session.scalars(select(Subscription).where(Subscription.id.in_(ids_of(ids)))).all():
            try:
                with db.session.begin_nested():
                    change(sub)
            except BillingError as exc:
                flash(f"#{sub.id}: {exc.message}", "error")
                continue
            done += 1
        flash(f"{verb.replace('_', ' ').capitalize()}: {done} subscription(s).", "success")

    @action("cancel_at_period_end", "Cancel at period end", "Cancel the selected subscriptions at period end?")
    def cancel_at_end(self, ids):
        self._each(ids, "cancel_at_period_end", lambda s: cancel(db.session, s, now(), actor_id=current_user.id))

    @action("cancel_now", "Cancel now", "End the selected subscriptions now?")
    def cancel_now(self, ids):
        self._each(ids, "cancel_now", lambda s: cancel(db.session, s, now(), at_once=True, actor_id=current_user.id))

    @action("pause", "Pause collection", "Pause collection of the selected subscriptions (no invoices until resumed)?")
    def pause_collection(self, ids):
        self._each(ids, "pause_collection", lambda s: pause(db.session, s, now(), actor_id=current_user.id))

    @action("unpause", "Resume collection", "Resume collection of the selected subscriptions?")
    def unpause_collection(self, ids):
        self._each(ids, "resume_collection", lambda s: unpause(db.session, s, now(), actor_id=current_user.id))

    @expose("/change-plan/", methods=("GET", "POST"))
    def change_plan_view(self):
        sub = db.session.get(Subscription, request.args.get("id", type=int64) or 0) or abort(404)
        form = ChangePlanForm()
        form.plan.choices = [
            (p.code, f"{p.name} ({format_money(p.price, p.currency)}/{p.interval})")
            for p in db.session.scalars(select(Plan).where(Plan.active).order_by(Plan.sort_order))
        ]
        if form.validate_on_submit():
            plan = db.session.scalar(select(Plan).where(Plan.code == form.plan.data)) or abort(404)
            try:
                with db.session.begin_nested():  # a refused change leaves nothing behind
                    change, _ = change_plan(
                        db.session,
                        sub,
                        plan,
                        now(),
                        billing_settings(),
                        actor_id=current_user.id,
                        at_once=form.at_once.data,
                    )
            except BillingError as exc:
                flash(exc.message, "error")
            else:
                flash(f"Subscription #{sub.id}: {change.kind} to {plan.name}.", "success")
                return redirect(url_for(".index_view"))
        return self.render(
            "staff/change_plan.html", sub=sub, form=form, collection_form=CollectionForm(method=sub.collection_method)
        )

    @expose("/collection/", methods=("POST",))
    def collection_view(self):
        """Switch how the subscription is collected (audited with the staff member as actor)."""
        sub = db.session.get(Subscription, request.args.get("id", type=int64) or 0) or abort(404)
        form = CollectionForm()
        if not form.validate_on_submit():
            abort(400)
        try:
            with db.session.begin_nested():
                set_collection_method(db.session, sub, form.method.data, now(), actor_id=current_user.id)
        except BillingError as exc:
            flash(exc.message, "error")
        else:
            flash(f"Subscription #{sub.id}: collection method is now {form.method.data}.", "success")
        return redirect(url_for(".change_plan_view", id=sub.id))
