"""Invoices: find by number or email, void, remind, mark paid by hand, credit notes and refunds."""

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

from ..billing import credits, invoices
from ..billing.documents import INVOICE, RECEIPT, credit_note_document, invoice_document
from ..billing.errors import BillingError
from ..billing.money import format_money, parse_major
from ..billing.statuses import INVOICE_LABELS
from ..documents import pdf
from ..extensions import db
from ..inputs import int64
from ..jobs import queues, tasks
from ..models import CN_BALANCE, CN_REFUND, CreditNote, Invoice, Payment
from ..payments import refunds
from ..payments.collect import card_provider, charge_invoice
from ..payments.errors import PaymentError
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

    # --- corrections: credit notes and refunds (billing/credits.py) ---

    def _send_refunds(self, refund_ids: list[int]) -> str:
        """Ask the provider for refunds just recorded. Commits inside, on purpose: each refund is
        on record (its amount taken from what can still be refunded) before the provider is called."""
        db.session.commit()
        sent = refunds.send(db.session, self.admin.app.config, refund_ids, now(), db.session.commit)
        return ", ".join(f"{format_money(r.amount, r.currency)} {r.status}" for r in sent)

    @expose("/credit-note/", methods=("GET", "POST"))
    def credit_note_view(self):
        """Correct an issued invoice: credit the whole of it or some lines, with a reason."""
        inv = db.session.get(Invoice, request.args.get("id", type=int64) or 0) or abort(404)
        form = FlaskForm()
        left = credits.lines_left(db.session, inv)
        values = {"reason": "", "outcome": "", "whole": "1"}
        error = None
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            values = {k: (request.form.get(k) or "")[:2000] for k in ("reason", "outcome", "whole")}
            try:
                amounts = None if values["whole"] else self._line_amounts(inv, left)
                note = credits.issue_credit_note(
                    db.session,
                    inv.id,
                    amounts,
                    values["reason"],
                    values["outcome"] or None,
                    now(),
                    billing_settings(),
                    actor_id=current_user.id,
                )
            except BillingError as exc:
                error = exc.message
            else:
                message = f"Credit note {note.number} for {format_money(note.total, note.currency)} issued."
                pending = credits.refunds_of_note(db.session, note.id)
                if pending:
                    message += " Refund: " + self._send_refunds(pending) + "."
                flash(message, "success")
                return redirect(url_for(".details_view", id=inv.id))
        status = 422 if error else 200
        page = self.render(
            "staff/credit_note.html", invoice=inv, left=left, form=form, values=values, error=error,
            refund=CN_REFUND, balance=CN_BALANCE,
        )  # fmt: skip
        return page, status

    @staticmethod
    def _line_amounts(inv: Invoice, left) -> dict[int, int]:
        amounts = {}
        for item in left:
            text = (request.form.get(f"line-{item.line.id}") or "").strip()
            if not text:
                continue
            try:
                amounts[item.line.id] = parse_major(text, inv.currency)
            except (ValueError, ArithmeticError):
                raise BillingError(
                    f"Line {item.line.position}: {text[:40]!r} is not an amount.", "bad_amount", 422
                ) from None
        return amounts

    @expose("/refund/", methods=("POST",))
    def refund_view(self):
        """Refund a payment (all that is left of it, or the amount given) through its provider."""
        payment = db.session.get(Payment, request.args.get("payment", type=int64) or 0) or abort(404)
        if not FlaskForm().validate_on_submit():
            abort(400)
        text = (request.form.get("amount") or "").strip()[:40]
        try:
            amount = parse_major(text, payment.currency) if text else None
            refund = credits.start_refund(
                db.session,
                payment.id,
                amount,
                (request.form.get("reason") or payment.flag or "")[:2000],
                now(),
                actor_id=current_user.id,
            )
        except BillingError as exc:
            flash(exc.message, "error")
        except (ValueError, ArithmeticError):
            flash(f"{text!r} is not an amount.", "error")
        else:
            try:
                flash(f"Refund of {self._send_refunds([refund.id])}.", "success")
            except PaymentError as exc:
                flash(f"Refund recorded but not sent: {exc}", "warning")
        return redirect(url_for(".details_view", id=payment.invoice_id))

    @expose("/credit-note-pdf/")
    def credit_note_pdf_view(self):
        note = db.session.get(CreditNote, request.args.get("id", type=int64) or 0) or abort(404)
        return pdf.download(credit_note_document(note, seller()), "credit_note")
