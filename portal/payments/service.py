"""Which provider takes payment, and starting a checkout for an invoice.

Shared by the portal's Pay button and the JSON API.
"""
from __future__ import annotations

from flask import current_app, url_for

from ..billing.checkouts import Checkout
from ..billing.invoices import unpayable_reason
from ..extensions import db
from ..models import Invoice
from .demo import DemoGateway
from .errors import PaymentError
from .gateway import StripeGateway


def gateway():
    """Stripe when a key is configured, the local demo checkout otherwise."""
    cfg = current_app.config
    if cfg["STRIPE_SECRET_KEY"]:
        return StripeGateway(cfg["STRIPE_SECRET_KEY"], cfg["STRIPE_WEBHOOK_SECRET"], cfg["STRIPE_API_BASE"])
    return DemoGateway(cfg["SECRET_KEY"], lambda token: url_for("payments.demo_checkout", token=token))


def start_payment(invoice: Invoice, user) -> Checkout:
    """A checkout for a payable invoice of `user`; PaymentError if refused. The caller commits."""
    reason = unpayable_reason(invoice)
    if reason is not None:
        raise PaymentError(reason)
    base = current_app.config["PUBLIC_URL"]
    success = base + url_for("payments.returned", invoice_id=invoice.id) + "&session_id={CHECKOUT_SESSION_ID}"
    cancel = base + url_for("account.invoice", invoice_id=invoice.id, payment="canceled")
    checkout = gateway().start(invoice, user, success, cancel)
    invoice.checkout_ref = checkout.ref
    db.session.flush()
    return checkout
