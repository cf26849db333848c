"""Pay, return, demo checkout and the Stripe webhook."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, jsonify, render_template, request, url_for
from flask_login import current_user, login_required

from ..billing.checkouts import EXPIRED, PAID, PROCESSING
from ..billing.collection import CardDetails, remove_card, retry_now_ids, save_card
from ..billing.invoice_queries import own_invoice
from ..billing.invoices import fulfil, unpayable_reason
from ..extensions import csrf, db
from ..forms import ActionForm
from ..inputs import int64
from ..jobs.tasks import enqueue_charge_customer
from ..models import INV_PAID
from ..runtime import billing_settings, now
from ..web import page_or_partial, see_other
from . import events, inbox
from .collect import card_provider, charge_invoices
from .demo import DemoCards
from .errors import PaymentError
from .forms import DemoCardForm
from .gateway import StripeGateway
from .links import card_return_urls, demo_checkout_url, demo_setup_url, return_urls
from .service import gateway, start_payment

bp = Blueprint("payments", __name__)
log = logging.getLogger(__name__)


def _gateway():
    return gateway(current_app.config, demo_checkout_url)


@bp.route("/invoices/<int:invoice_id>/pay", methods=["POST"])
@login_required
def pay(invoice_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    invoice = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    if reason := unpayable_reason(invoice):  # a stale tab, or a second click after paying
        return _nothing_to_pay(invoice, reason)
    try:
        with db.session.begin_nested():  # a refusal leaves the invoice (and the customer) as they were
            checkout = start_payment(
                db.session,
                invoice,
                current_user,
                _gateway(),
                *return_urls(invoice.id),
                save_card=request.form.get("save_card") == "1",
            )
    except PaymentError as exc:
        flash(f"The payment could not be started: {exc} Your invoice is unchanged.", "error")
        return see_other(url_for("account.invoice", invoice_id=invoice_id))
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
    state = PAID if invoice.status == INV_PAID else PROCESSING
    if session_id and invoice.status != INV_PAID and current_app.config["STRIPE_SECRET_KEY"]:
        try:
            checkout = _gateway().fetch(session_id)
        except PaymentError as exc:
            flash(f"We could not confirm the payment yet: {exc}", "error")
        else:
            if checkout.invoice_id != invoice.id:
                abort(404)
            fulfil(db.session, checkout, now(), billing_settings())
            state = EXPIRED if checkout.state == EXPIRED else state
    db.session.refresh(invoice)
    return page_or_partial(
        "payments/return.html", "payments/_status.html", "payment-status", dict(invoice=invoice, state=state)
    )


@bp.route("/demo/checkout/<token>", methods=["GET", "POST"])
@login_required
def demo_checkout(token: str):
    if current_app.config["STRIPE_SECRET_KEY"]:
        abort(404)  # the demo provider exists only while Stripe is not configured
    demo = _gateway()
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
        if demo.wants_card_saved(token):  # ticked "save this card" on the invoice page
            save_card(db.session, current_user.id, DemoCards.card("4242424242424242", 12, now().year + 3), now())
        return see_other(url_for("payments.returned", invoice_id=invoice.id))
    return render_template("payments/demo_checkout.html", invoice=invoice, checkout=checkout, form=form)


@bp.route("/stripe/webhook", methods=["POST"])
@csrf.exempt  # Stripe cannot send a CSRF token: the signature is the proof instead
def webhook():
    if not current_app.config["STRIPE_SECRET_KEY"]:
        abort(404)
    stripe_gateway = _gateway()
    try:
        event = stripe_gateway.verify(request.get_data(), request.headers.get("Stripe-Signature", "")).to_dict()
    except ValueError as exc:
        log.warning("webhook refused: %s", exc)
        return jsonify(error={"code": "bad_signature", "message": str(exc)}), 400
    problem = events.malformed(event)
    if problem:
        log.warning("webhook refused: %s", problem)
        return jsonify(error={"code": "malformed_event", "message": problem}), 400

    moment = now()
    record = inbox.receive(db.session, event["id"], event["type"], event, moment)
    if record is None:
        return jsonify(received=True, duplicate=True)
    new_card_of = None
    try:
        with db.session.begin_nested():  # a failure undoes the event's work, not the event's record
            new_card_of = events.handle(db.session, stripe_gateway, event, moment, billing_settings())
            inbox.mark_processed(db.session, record, moment)
    except PaymentError as exc:
        inbox.record_error(db.session, record, str(exc), final=not exc.retryable, now=moment)
        if exc.retryable:  # Stripe delivers again later
            # Committed here: the 503 below rolls the request back, and staff must still
            # see the event and why it failed.
            db.session.commit()
            return jsonify(error={"code": "provider_unavailable", "message": str(exc)}), 503
    if new_card_of is not None:
        # Committed before a worker is asked to charge the new card: the job must see it.
        db.session.commit()
        enqueue_charge_customer(current_app.config["REDIS_URL"], new_card_of)
    return jsonify(received=True)


# -- the saved card ------------------------------------------------------------------------


def _cards():
    return card_provider(current_app.config, demo_setup_url)


def _card_saved(card: CardDetails):
    """Save the card, then charge at once what it can pay (failed or never tried invoices)."""
    pm = save_card(db.session, current_user.id, card, now())
    retry = retry_now_ids(db.session, current_user.id)
    label = pm.label
    # Committed here, on purpose: the card is saved whatever the charges below answer,
    # and each charge records its attempt (committed) before the provider is called.
    db.session.commit()
    counts = charge_invoices(db.session, _cards(), retry, now(), billing_settings(), db.session.commit, force=True)
    message = f"{label} is saved: your invoices will be charged to it automatically."
    if counts["charges_succeeded"]:
        message += f" {counts['charges_succeeded']} open invoice(s) paid with it now."
    category = "success"
    if counts["charges_failed"]:
        message += " The charge of an open invoice failed: see the invoice below."
        category = "error"
    flash(message, category)
    return see_other(url_for("account.account", _anchor="payment-method"))


@bp.route("/account/card", methods=["POST"])
@login_required
def add_card():
    """Add or update the card: Stripe Checkout in setup mode, or the demo's own page."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        url = _cards().start_setup(current_user, *card_return_urls())
    except PaymentError as exc:
        flash(f"The card set-up could not be started: {exc}", "error")
        return see_other(url_for("account.account", _anchor="payment-method"))
    return see_other(url, external=True)


@bp.route("/account/card/return")
@login_required
def card_returned():
    """Where Stripe sends the customer after saving a card (the webhook may come later or first)."""
    provider = _cards()
    session_id = request.args.get("session_id", "")
    if not isinstance(provider, StripeGateway) or not session_id or len(session_id) > 255:
        abort(404)
    try:
        found = provider.fetch_setup(session_id)
    except PaymentError as exc:
        flash(f"We could not confirm the card yet: {exc}", "error")
        return see_other(url_for("account.account", _anchor="payment-method"))
    if found is None or found[0] != current_user.stripe_customer_id:
        abort(404)
    return _card_saved(found[1])


@bp.route("/demo/card/<token>", methods=["GET", "POST"])
@login_required
def demo_card(token: str):
    """The demo provider's "add a card" page (test mode): Stripe's test cards behave as on Stripe."""
    provider = _cards()
    if not isinstance(provider, DemoCards):
        abort(404)
    try:
        user_id, nonce = provider.read_setup(token)
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return see_other(url_for("account.account", _anchor="payment-method"))
    if user_id != current_user.id:
        abort(404)
    form = DemoCardForm()
    if request.method == "POST":
        if request.form.get("action") == "cancel":
            if not ActionForm().validate_on_submit():
                abort(400)
            return see_other(url_for("account.account", card="canceled", _anchor="payment-method"))
        if form.validate_on_submit():
            today = now().date()
            try:
                if (form.exp_year.data, form.exp_month.data) < (today.year, today.month):
                    raise ValueError("This card has expired: check the expiry date.")
                card = provider.card(form.number.data, form.exp_month.data, form.exp_year.data, nonce)
            except ValueError as exc:
                form.number.errors = [*form.number.errors, str(exc)]
            else:
                return _card_saved(card)
        elif not form.errors:  # CSRF only
            abort(400)
    html = render_template("payments/demo_card.html", form=form)
    return html, 422 if form.errors else 200


@bp.route("/account/card/<int:pm_id>/remove", methods=["POST"])
@login_required
def remove_card_view(pm_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    pm = remove_card(db.session, current_user.id, pm_id, now())
    if pm is None:
        abort(404)
    try:
        _cards().detach(pm.provider_ref)
    except PaymentError as exc:  # removed here: never charged again, whatever the provider says
        log.warning("detaching card %s failed: %s", pm.id, exc)
    flash(f"{pm.label} was removed. You will pay each invoice yourself until you add a card.", "success")
    return see_other(url_for("account.account", _anchor="payment-method"))
