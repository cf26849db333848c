"""Pay, return, demo checkout and the Stripe webhook."""
from __future__ import annotations

import json
import logging

from flask import (Blueprint, abort, current_app, flash, jsonify, render_template, request,
                   url_for)
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..billing.checkouts import EXPIRED, PAID, PROCESSING
from ..billing.invoice_queries import own_invoice
from ..billing.invoices import fulfil, unpayable_reason
from ..extensions import csrf, db
from ..forms import ActionForm
from ..inputs import BadInput, check_text, int64
from ..models import INV_PAID, WebhookEvent
from ..runtime import billing_settings, now
from ..web import page_or_partial, see_other
from .errors import PaymentError
from .gateway import failed
from .service import gateway, start_payment

bp = Blueprint("payments", __name__)
log = logging.getLogger(__name__)

CHECKOUT_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}


@bp.route("/invoices/<int:invoice_id>/pay", methods=["POST"])
@login_required
def pay(invoice_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    invoice = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    if reason := unpayable_reason(invoice):  # a stale tab, or a second click after paying
        return _nothing_to_pay(invoice, reason)
    try:
        checkout = start_payment(invoice, current_user)
    except PaymentError as exc:
        db.session.rollback()
        flash(f"The payment could not be started: {exc} Your invoice is unchanged.", "error")
        return see_other(url_for("account.invoice", invoice_id=invoice_id))
    db.session.commit()
    return see_other(checkout.url, external=True)


def _nothing_to_pay(invoice, reason: str):
    """Say plainly why an invoice cannot be paid, on the invoice itself (its receipt)."""
    if invoice.status == INV_PAID:
        flash(f"{reason} The receipt is below.", "info")
        return see_other(url_for("account.invoice", invoice_id=invoice.id, _anchor="receipt"))
    flash(reason, "info")
    return see_other(url_for("account.invoice", invoice_id=invoice.id))


@bp.route("/payments/return")
@login_required
def returned():
    """Where Stripe (or the demo) sends the customer back; fulfils too, the webhook may be late."""
    invoice_id = request.args.get("invoice_id", type=int64) or 0
    invoice = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    session_id = request.args.get("session_id", "")
    state = PAID if invoice.status == "paid" else PROCESSING
    if session_id and invoice.status != "paid" and current_app.config["STRIPE_SECRET_KEY"]:
        try:
            checkout = gateway().fetch(session_id)
        except PaymentError as exc:
            flash(f"We could not confirm the payment yet: {exc}", "error")
        else:
            if checkout.invoice_id != invoice.id:
                abort(404)
            fulfil(db.session, checkout, now(), billing_settings())
            db.session.commit()
            state = EXPIRED if checkout.state == EXPIRED else state
    db.session.refresh(invoice)
    return page_or_partial("payments/return.html", "payments/_status.html", "payment-status",
                           dict(invoice=invoice, state=state))


@bp.route("/demo/checkout/<token>", methods=["GET", "POST"])
@login_required
def demo_checkout(token: str):
    if current_app.config["STRIPE_SECRET_KEY"]:
        abort(404)  # the demo provider exists only while Stripe is not configured
    demo = gateway()
    try:
        checkout = demo.read(token)
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return see_other(url_for("account.invoices"))
    invoice = own_invoice(db.session, current_user.id, checkout.invoice_id) or abort(404)
    if reason := unpayable_reason(invoice):  # the checkout page re-opened after paying
        return _nothing_to_pay(invoice, reason)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        if request.form.get("action") == "cancel":
            return see_other(url_for("account.invoice", invoice_id=invoice.id, payment="canceled"))
        fulfil(db.session, demo.pay(token), now(), billing_settings())
        db.session.commit()
        return see_other(url_for("payments.returned", invoice_id=invoice.id))
    return render_template("payments/demo_checkout.html", invoice=invoice, checkout=checkout, form=form)


@bp.route("/stripe/webhook", methods=["POST"])
@csrf.exempt  # Stripe cannot send a CSRF token: the signature is the proof instead
def webhook():
    cfg = current_app.config
    if not cfg["STRIPE_SECRET_KEY"]:
        abort(404)
    stripe_gateway = gateway()
    try:
        event = stripe_gateway.verify(request.get_data(), request.headers.get("Stripe-Signature", ""))
    except ValueError as exc:
        log.warning("webhook refused: %s", exc)
        return jsonify(error={"code": "bad_signature", "message": str(exc)}), 400
    problem = _malformed(event)
    if problem:
        log.warning("webhook refused: %s", problem)
        return jsonify(error={"code": "malformed_event", "message": problem}), 400

    record = db.session.scalar(select(WebhookEvent).where(WebhookEvent.provider_event_id == event.id))
    if record is not None and record.processed_at is not None:
        return jsonify(received=True, duplicate=True)
    if record is None:
        record = _new_record(event)
        try:
            db.session.flush()
        except IntegrityError:  # the same event, delivered twice at once
            db.session.rollback()
            return jsonify(received=True, duplicate=True)
    try:
        if event.type in CHECKOUT_EVENTS:
            checkout = stripe_gateway.fetch(event.data.object["id"])  # never trust the payload
            if event.type == "checkout.session.async_payment_failed":
                checkout = failed(checkout)  # only if the fetched session does not say otherwise
            fulfil(db.session, checkout, now(), billing_settings())
        record.processed_at, record.error = now(), None
        db.session.commit()
    except PaymentError as exc:
        db.session.rollback()
        _record_error(event, str(exc), final=not exc.retryable)
        if exc.retryable:  # Stripe delivers again later
            return jsonify(error={"code": "provider_unavailable", "message": str(exc)}), 503
    return jsonify(received=True)


def _text(value, limit: int = 255) -> bool:
    """A string the database can store: 1..limit characters, no NUL, no lone surrogate."""
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return False
    try:
        check_text(value, "The value")
    except BadInput:
        return False
    return True


def _malformed(event) -> str | None:
    """Why a verified event cannot be processed (no id to store it by, no session to fetch)."""
    event = event.to_dict()
    if not _text(event.get("id")):
        return "The event has no valid 'id'."
    if not _text(event.get("type"), limit=120):  # WebhookEvent.type is a VARCHAR(120)
        return "The event has no valid 'type'."
    if event["type"] in CHECKOUT_EVENTS:
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict) or not _text(obj.get("id")):
            return "The event has no 'data.object.id' naming a Checkout Session."
    return None


def _new_record(event) -> WebhookEvent:
    record = WebhookEvent(provider_event_id=event.id, type=event.type,
                          payload=json.dumps(event.to_dict(), indent=2, sort_keys=True),
                          received_at=now())
    db.session.add(record)
    return record


def _record_error(event, message: str, final: bool) -> None:
    """Keep the failed event with its error for staff; a final one is not retried."""
    record = db.session.scalar(select(WebhookEvent).where(WebhookEvent.provider_event_id == event.id))
    if record is None:
        record = _new_record(event)
    record.error = message
    if final:
        record.processed_at = now()
    db.session.commit()
