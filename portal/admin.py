"""The staff console: Flask-Admin views, built per app in init_admin(app)."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, make_response, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.model import typefmt
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import DateField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp, ValidationError

from .billing import audit, invoices, reports
from .billing.errors import BillingError
from .billing.money import format_money
from .billing.subscriptions import cancel, change_plan
from .extensions import db
from .inputs import INT64_MAX, MAX_PAGE, BadInput, int64
from .jobs import monitor, queues, tasks
from .models import (
    AuditEntry, Invoice, Notification, Payment, Plan,
    Subscription, User, WebhookEvent, parse_invoice_number,
)
from .payments.fulfil import record_manual_payment
from .runtime import billing_settings, now


class StaffOnly:
    """Staff see the console; customers get 403, visitors the login page."""

    def is_accessible(self):
        return current_user.is_authenticated and current_user.is_staff

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403)
        return redirect(url_for("auth.login", next=request.full_path))


def _ints(ids) -> list[int]:
    """Action ids arrive as strings; PostgreSQL will not compare them with BIGINT.
    Only ids a BIGINT can hold: '²' or 2**63 name no row (and must not be a 500)."""
    out = []
    for i in ids:
        try:
            out.append(int64(str(i)))
        except ValueError:
            continue
    return out


def _money(view, context, model, name):
    return format_money(getattr(model, name), model.currency)


def _moment(_view, value, _name=None) -> str:
    """Timestamps as people read them, in UTC: "Nov 25, 2026 20:40 UTC"."""
    return value.strftime("%b %-d, %Y %H:%M UTC")


def _day(_view, value, _name=None) -> str:
    return value.strftime("%b %-d, %Y")


STAFF_FORMATTERS = {**typefmt.BASE_FORMATTERS, dt.datetime: _moment, dt.date: _day}


def _audited(action_name: str, obj, detail: str = "") -> None:
    audit.record(db.session, current_user.id, action_name, obj, detail, now())


class StaffModelView(StaffOnly, ModelView):
    form_base_class = FlaskForm  # CSRF on every form, as in the portal
    can_view_details = True
    named_filter_urls = True  # ?flt0_status_equals=overdue: readable, bookmarkable
    page_size = 50
    column_type_formatters = column_type_formatters_detail = STAFF_FORMATTERS

    def get_one(self, id):  # noqa: A002  (Flask-Admin's name)
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

    def after_model_change(self, form, model, is_created):
        _audited("create" if is_created else "edit", model,
                 ", ".join(f"{f.name}={f.data!r}" for f in form if f.name != "csrf_token"))
        db.session.commit()


class ReadOnlyView(StaffModelView):
    can_create = can_edit = can_delete = False


class UserView(StaffModelView):
    can_delete = False
    column_list = ("email", "name", "is_staff", "created_at")
    column_searchable_list = ("email", "name")
    column_filters = ("is_staff",)
    column_details_exclude_list = ("password_hash",)
    form_columns = ("email", "name", "is_staff")


class PlanView(StaffModelView):
    can_delete = False  # archive instead: old subscriptions keep their plan
    column_list = ("code", "name", "price", "currency", "interval", "trial_days", "active")
    column_formatters = {"price": _money}
    column_filters = ("active", "interval")
    form_columns = ("code", "name", "description", "price", "currency", "interval", "trial_days", "active", "sort_order")
    form_args = {
        # Codes go in URLs, API bodies and CSV exports: plain lower-case ASCII only (\Z: no trailing newline).
        "code": {"validators": [Regexp(r"\A[a-z0-9_-]{1,32}\Z", message=(
            "A plan code is 1 to 32 lower-case letters (a-z), digits, '-' or '_', e.g. 'team' or 'pro-2024'."))]},
        "price": {"label": "Price (minor units, e.g. cents)", "validators": [
            NumberRange(min=0, message="A price cannot be negative."),
            NumberRange(max=INT64_MAX, message=f"A price can be at most {INT64_MAX:,} minor units.")]},
        "currency": {"validators": [Regexp(r"\A[A-Z]{3}\Z", message="A currency is a three-letter code in capitals, e.g. USD.")]},
        "trial_days": {"validators": [NumberRange(min=0, max=365)]},
        "sort_order": {"validators": [NumberRange(min=-(2**31), max=2**31 - 1,
                                                  message="The sort order must be a whole number from -2,147,483,648 to 2,147,483,647.")]},
    }
    form_choices = {"interval": [("month", "Monthly"), ("year", "Yearly")]}

    @action("archive", "Archive", "Archive the selected plans? Existing subscriptions keep them.")
    def archive(self, ids):
        for plan in db.session.scalars(select(Plan).where(Plan.id.in_(_ints(ids)))):
            if plan.active:
                plan.active = False
                _audited("archive", plan)
        db.session.commit()
        flash("Archived.", "success")


class SubscriptionView(StaffModelView):
    can_create = can_edit = can_delete = False
    column_list = ("id", "user", "plan", "status", "current_period_start", "current_period_end",
                   "cancel_at_period_end", "pending_plan")
    column_filters = ("status", "plan.code", "cancel_at_period_end", "user.email")
    column_searchable_list = ("user.email",)
    column_formatters = {"id": lambda v, c, m, n: Markup(
        f'<a href="{url_for(".change_plan_view", id=m.id)}">#{m.id}</a>')}

    def _each(self, ids, verb, fn):
        done = 0
        for sub in db.session.scalars(select(Subscription).where(Subscription.id.in_(_ints(ids)))):
            try:
                fn(sub)
            except BillingError as exc:
                flash(f"#{sub.id}: {exc.message}", "error")
                continue
            _audited(verb, sub)
            done += 1
        db.session.commit()
        flash(f"{verb.replace('_', ' ').capitalize()}: {done} subscription(s).", "success")

    @action("cancel_at_period_end", "Cancel at period end", "Cancel the selected subscriptions at period end?")
    def cancel_at_end(self, ids):
        self._each(ids, "cancel_at_period_end", lambda s: cancel(db.session, s, now()))

    @action("cancel_now", "Cancel now", "End the selected subscriptions now?")
    def cancel_now(self, ids):
        self._each(ids, "cancel_now", lambda s: cancel(db.session, s, now(), at_once=True))

    @expose("/change-plan/", methods=("GET", "POST"))
    def change_plan_view(self):
        sub = db.session.get(Subscription, request.args.get("id", type=int64) or 0) or abort(404)
        form = ChangePlanForm()
        form.plan.choices = [(p.code, f"{p.name} ({format_money(p.price, p.currency)}/{p.interval})")
                             for p in db.session.scalars(select(Plan).where(Plan.active).order_by(Plan.sort_order))]
        if form.validate_on_submit():
            plan = db.session.scalar(select(Plan).where(Plan.code == form.plan.data))
            try:
                change, invoice = change_plan(db.session, sub, plan, now(), billing_settings())
            except BillingError as exc:
                db.session.rollback()
                flash(exc.message, "error")
            else:
                _audited("change_plan", sub, f"to {plan.code} ({change.kind}"
                         + (f", invoice {invoice.number}" if invoice else "") + ")")
                db.session.commit()
                flash(f"Subscription #{sub.id}: {change.kind} to {plan.name}.", "success")
                return redirect(url_for(".index_view"))
        return self.render("staff/change_plan.html", sub=sub, form=form)


class ChangePlanForm(FlaskForm):
    plan = SelectField("New plan", validators=[DataRequired()])


class MarkPaidForm(FlaskForm):
    note = TextAreaField("Note (e.g. bank transfer reference)", validators=[DataRequired(), Length(max=500)])


class InvoiceView(StaffModelView):
    can_create = can_edit = can_delete = False
    column_list = ("number", "user", "kind", "period_start", "period_end", "total", "status", "due_date", "paid_at")
    column_sortable_list = ("period_start", "total", "status", "due_date", "paid_at", ("number", "id"))
    column_default_sort = ("id", True)
    column_filters = ("status", "due_date", "user.email", "kind")
    column_searchable_list = ("user.email",)
    search_placeholder = lambda self: "Invoice number or customer email"  # noqa: E731
    column_formatters = {"total": _money, "number": lambda v, c, m, n: m.number}
    column_details_list = ("number", "user", "kind", "description", "period_start", "period_end", "total",
                           "currency", "status", "issued_at", "due_date", "paid_at", "voided_at", "subscription")
    details_template = "staff/invoice_details.html"

    def _apply_search(self, query, count_query, joins, count_joins, search):
        number = parse_invoice_number(search)
        if number is not None:
            return query.filter(Invoice.id == number), count_query.filter(Invoice.id == number), joins, count_joins
        return super()._apply_search(query, count_query, joins, count_joins, search)

    @action("void", "Void", "Void the selected invoices? Customers will no longer be asked to pay them.")
    def void(self, ids):
        done = sum(invoices.void(db.session, inv, now(), billing_settings(), current_user.id)
                   for inv in db.session.scalars(select(Invoice).where(Invoice.id.in_(_ints(ids)))))
        db.session.commit()
        flash(f"Voided {done} invoice(s).", "success")

    @action("remind", "Send a reminder now")
    def remind(self, ids):
        moment = now()
        done = sum(invoices.send_reminder(db.session, inv, moment, current_user.id)
                   for inv in db.session.scalars(select(Invoice).where(Invoice.id.in_(_ints(ids)))))
        # The reminders are the outbox rows, committed here: the periodic delivery sends them
        # whatever happens next. Asking a worker to deliver at once is only a nudge, so a
        # queue that is down cannot undo (or misreport) what was saved.
        db.session.commit()
        if done and not tasks.nudge_delivery(self.admin.app.config["REDIS_URL"]):
            flash(f"{done} reminder(s) saved in the outbox, but not sent now: "
                  f"{queues.UNREACHABLE_MESSAGE}. They go out with the next outbox delivery "
                  "once it is back.", "warning")
            return
        flash(f"Queued {done} reminder(s).", "success")

    @expose("/mark-paid/", methods=("GET", "POST"))
    def mark_paid_view(self):
        inv = db.session.get(Invoice, request.args.get("id", type=int64) or 0) or abort(404)
        form = MarkPaidForm()
        if not inv.is_payable:
            flash(f"{inv.number} is {inv.status}; nothing to mark paid.", "error")
            return redirect(url_for(".details_view", id=inv.id))
        if form.validate_on_submit():
            payment = record_manual_payment(db.session, inv, form.note.data, current_user.id, now(), billing_settings())
            _audited("mark_paid", inv, f"payment {payment.provider_ref}: {form.note.data}")
            db.session.commit()
            flash(f"{inv.number} marked paid.", "success")
            return redirect(url_for(".details_view", id=inv.id))
        return self.render("staff/mark_paid.html", invoice=inv, form=form)


class PaymentView(ReadOnlyView):
    column_list = ("id", "invoice", "provider", "provider_ref", "amount", "status", "flag", "note", "created_at")
    column_formatters = {"amount": _money}
    column_filters = ("provider", "status", "flag")
    column_searchable_list = ("provider_ref",)


class NotificationView(ReadOnlyView):
    column_list = ("id", "user", "invoice", "kind", "step", "subject", "created_at", "sent_at", "attempts",
                   "error")
    column_filters = ("kind", "user.email")


class WebhookEventView(ReadOnlyView):
    column_list = ("provider_event_id", "type", "received_at", "processed_at", "error")
    column_filters = ("type",)
    column_formatters_detail = {"payload": lambda v, c, m, n: Markup(f"<pre>{escape(m.payload)}</pre>")}


class AuditView(ReadOnlyView):
    column_list = ("created_at", "actor", "action", "object_type", "object_id", "detail")
    column_default_sort = ("id", True)
    column_filters = ("action", "object_type", "actor.email")


BILLING_WINDOW_DAYS = 366  # how far back a run "as of" a past day may go: a year of catching up


class RunBillingForm(FlaskForm):
    as_of = DateField("Bill as of", validators=[DataRequired(message="Give the day to bill as of (YYYY-MM-DD).")])

    def validate_as_of(self, field):
        """A day within the last year, today included: the jobs compute dates from it, and a day
        like 0001-01-01 overflows them; a future day would bill before the periods are due."""
        today = now().date()
        earliest = today - dt.timedelta(days=BILLING_WINDOW_DAYS)
        if not earliest <= field.data <= today:
            raise ValidationError(f"Bill as of a day from {earliest.isoformat()} to today ({today.isoformat()}): "
                                  f"{field.data.isoformat()} is outside that window.")


class JobsView(StaffOnly, BaseView):
    def _conn(self):
        return queues.connection(self.admin.app.config["REDIS_URL"])

    @expose("/")
    def index(self):
        conn = self._conn()
        try:
            monitor.requeue_all_abandoned(conn)  # workers sweep too; this shows the latest state
            context = dict(stats=monitor.queue_stats(conn), scheduled=monitor.scheduled_jobs(conn),
                           failed=monitor.failed_jobs(conn), abandoned=monitor.abandoned_jobs(conn))
        except queues.UNREACHABLE as exc:
            return self._unreachable(exc)
        return self.render("staff/jobs.html", **context,
                           form=FlaskForm(), run_form=RunBillingForm(as_of=now().date()),
                           embedded=not self.admin.app.config["REDIS_URL"])

    def _unreachable(self, exc):
        """503 with a plain page: what is down, what waits, what to check."""
        response = make_response(self.render("staff/jobs_unreachable.html", error=str(exc),
                                             message=queues.UNREACHABLE_MESSAGE), 503)
        response.headers["Retry-After"] = "30"
        return response

    def _queue_action(self, audit_action: str, detail: str, enqueue):
        """Audit and enqueue as one outcome: the audit entry is flushed, the job enqueued, then
        the entry committed; if the queue cannot be reached, nothing is kept."""
        audit.record(db.session, current_user.id, audit_action, JobRef(), detail, now())
        try:
            db.session.flush()
            result = enqueue(self._conn())
        except queues.UNREACHABLE:
            db.session.rollback()
            flash(f"{queues.UNREACHABLE_MESSAGE}: nothing was queued or saved. Try again when it is back.",
                  "error")
            return None, False
        db.session.commit()
        return result, True

    @expose("/retry/<job_id>", methods=("POST",))
    def retry(self, job_id):
        if not FlaskForm().validate_on_submit():
            abort(400)
        ok, reached = self._queue_action("retry_job", job_id, lambda conn: monitor.retry(conn, job_id))
        if reached:
            flash("Job queued again." if ok else "That job is no longer in the failed list.",
                  "success" if ok else "error")
        return redirect(url_for(".index"))

    @expose("/run-billing", methods=("POST",))
    def run_billing(self):
        form = RunBillingForm()
        if not form.validate_on_submit():
            parsed = form.as_of.data is not None and form.as_of.errors  # a real day, outside the window
            flash(form.as_of.errors[0] if parsed else "Give the day to bill as of (YYYY-MM-DD).", "error")
            return redirect(url_for(".index"))
        day = form.as_of.data.isoformat()
        _, reached = self._queue_action(
            "run_billing", f"as of {day}",
            lambda conn: queues.queue(queues.BILLING, conn).enqueue(tasks.daily_billing, day))
        if reached:
            flash(f"Billing as of {day} queued.", "success")
        return redirect(url_for(".index"))


class JobRef:
    """Audit target for actions on jobs (no database row)."""

    id = None


class Dashboard(StaffOnly, AdminIndexView):
    @expose("/")
    def index(self):
        today = now().date()
        revenue = reports.revenue_by_month(db.session, today)
        peak = max([sum(m["amounts"].values()) for m in revenue] + [1])
        failed = []
        try:
            failed = monitor.failed_jobs(queues.connection(self.admin.app.config["REDIS_URL"]), limit=5)
        except Exception:  # Redis down must not take the dashboard with it
            flash("The job queue could not be reached.", "error")
        return self.render("staff/dashboard.html", mrr=reports.mrr_by_plan(db.session),
                           receivables=reports.receivables(db.session), revenue=revenue, peak=peak,
                           due=reports.due_soon(db.session, today), failed=failed,
                           flagged=reports.flagged_payments(db.session), today=today)


def init_admin(app) -> Admin:
    from .security import csp_nonce

    admin = Admin(app, name="Acme Billing · Staff",
                  theme=Bootstrap4Theme(swatch="default", fluid=True, base_template="staff/master.html"),
                  index_view=Dashboard(name="Dashboard", url="/admin"), csp_nonce_generator=csp_nonce)
    for view in (
        UserView(User, db, name="Users"),
        PlanView(Plan, db, name="Plans"),
        SubscriptionView(Subscription, db, name="Subscriptions"),
        InvoiceView(Invoice, db, name="Invoices"),
        PaymentView(Payment, db, name="Payments"),
        NotificationView(Notification, db, name="Notices"),
        WebhookEventView(WebhookEvent, db, name="Webhooks"),
        AuditView(AuditEntry, db, name="Audit log"),
        JobsView(name="Jobs", endpoint="jobs"),
    ):
        admin.add_view(view)
    return admin


