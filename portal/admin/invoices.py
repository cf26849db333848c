"""Invoices: find by number or email, void, remind, mark paid by hand."""

from __future__ import annotations

from collections.abc import Sequence

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from ..billing import invoices
from ..billing.documents import INVOICE, RECEIPT, invoice_document
from ..billing.errors import BillingError
from ..billing.statuses import INVOICE_LABELS
from ..documents import pdf
from ..extensions import db
from ..inputs import int64
from ..jobs import queues, tasks
from ..models import Invoice
from ..payments.collect import card_provider, charge_invoice
from ..runtime import billing_settings, now, seller
from .base import StaffModelView, ids_of, money


class MarkPaidForm(FlaskForm):
    note = TextAreaField("Note (e.g. bank transfer reference)", validators=[DataRequired(), Length(max=500)])


class InvoiceView(StaffModelView):
    can_create = can_edit = can_delete = False
    column_list = ("number", "user", "kind", "period_start", "period_end", "total", "status", "due_date", "paid_at")
    column_sortable_list = ("period_start", "total", "status", "due_date", "paid_at", ("number", "id"))
    column_default_sort = ("id", True)
    column_filters = ("status", "due_date", "user.email", "kind")
    column_choices = {"status": list(INVOICE_LABELS.items())}
    column_searchable_list = ("user.email",)
    search_placeholder = lambda self: "Invoice number or customer email"  # noqa: E731
    column_formatters = {
        "total": money,
        "subtotal_cents": money,
        "tax_cents": money,
        "number": lambda v, c, m, n: m.number,
    }
    column_labels = {"subtotal_cents": "Subtotal", "tax_cents": "Tax", "tax_note": "Tax note"}
    column_details_list = (
        "number",
        "user",
        "kind",
        "description",
        "period_start",
        "period_end",
        "subtotal_cents",
        "tax_cents",
        "total",
        "tax_note",
        "currency",
        "status",
        "issued_at",
        "due_date",
        "paid_at",
        "voided_at",
        "subscription",
    )
    details_template = "staff/invoice_details.html"

    def _apply_search(self, query, count_query, joins, count_joins, search):
        number = search.strip().upper()
        if number and db.session.scalar(select(Invoice.id).where(Invoice.number == number)) is not None:
            return (
                query.filter(Invoice.number == number),
                count_query.filter(Invoice.number == number),
                joins,
                count_joins,
            )
        return super()._apply_search(query, count_query, joins, count_joins, search)

    def _selected(self, ids) -> Sequence[Invoice]:
        return db.session.scalars(select(Invoice).where(Invoice.id.in_(ids_of(ids)))).all()

    @action("void", "Void", "Void the selected invoices? Customers will no longer be asked to pay them.")
    def void(self, ids):
        done = sum(
            invoices.void(db.session, inv, now(), billing_settings(), current_user.id) for inv in self._selected(ids)
        )
        flash(f"Voided {done} invoice(s).", "success")

    @action("remind", "Send a reminder now")
    def remind(self, ids):
        moment = now()
        done = sum(invoices.send_reminder(db.session, inv, moment, current_user.id) for inv in self._selected(ids))
        # Ordering is the point: the reminders (outbox rows) are saved before a worker is nudged to send them.
        db.session.commit()
        if done and not tasks.nudge_delivery(self.admin.app.config["REDIS_URL"]):
            # Only the nudge failed: the periodic outbox delivery still sends what was saved.
            flash(
                f"{done} reminder(s) saved in the outbox, but not sent now: "
                f"{queues.UNREACHABLE_MESSAGE}. They go out with the next outbox delivery "
                "once it is back.",
                "warning",
            )
            return
        flash(f"Queued {done} reminder(s).", "success")

    @expose("/pdf/")
    def pdf_view(self):
        """The invoice (or, once paid, its receipt) as the customer's PDF."""
        inv = db.session.get(Invoice, request.args.get("id", type=int64) or 0) or abort(404)
        doc = invoice_document(inv, seller())
        kind = RECEIPT if request.args.get("kind") == RECEIPT else INVOICE
        if kind == RECEIPT and not doc.is_paid:
            abort(404)
        return pdf.download(doc, kind)

    @expose("/charge-now/", methods=("POST",))
    def charge_now_view(self):
        """Charge the saved card now, outside the retry schedule (audited as charge_now)."""
        inv = db.session.get(Invoice, request.args.get("id", type=int64) or 0) or abort(404)
        if not FlaskForm().validate_on_submit():
            abort(400)
        provider = card_provider(self.admin.app.config, lambda token: "")
        # Commits inside, on purpose: the attempt is on record before the provider is called.
        status = charge_invoice(
            db.session,
            provider,
            inv.id,
            now(),
            billing_settings(),
            db.session.commit,
            force=True,
            actor_id=current_user.id,
        )
        if status is None:
            flash(
                f"{inv.number}: nothing to charge (paid, no saved card, a charge in flight, "
                "or the card was tried a moment ago).",
                "error",
            )
        else:
            db.session.refresh(inv)
            flash(
                f"{inv.number}: charge {status.replace('_', ' ')}.", "success" if status == "succeeded" else "warning"
            )
        return redirect(url_for(".details_view", id=inv.id))

    @expose("/mark-paid/", methods=("GET", "POST"))
    def mark_paid_view(self):
        inv = db.session.get(Invoice, request.args.get("id", type=int64) or 0) or abort(404)
        form = MarkPaidForm()
        if reason := invoices.unpayable_reason(inv):  # the core's answer, as the pay pages give it
            flash(reason, "error")
            return redirect(url_for(".details_view", id=inv.id))
        if form.validate_on_submit():
            try:
                invoices.record_manual_payment(
                    db.session, inv, form.note.data, current_user.id, now(), billing_settings()
                )
            except BillingError as exc:  # paid or voided since this page was loaded
                flash(exc.message, "error")
            else:
                flash(f"{inv.number} marked paid.", "success")
            return redirect(url_for(".details_view", id=inv.id))
        return self.render("staff/mark_paid.html", invoice=inv, form=form)
