"""The app's own pages a checkout sends the customer to, built for the current request.

The Flask side of starting a payment: service.py takes these URLs as plain strings.
"""

from __future__ import annotations

from flask import current_app, url_for


def return_urls(invoice_id: int) -> tuple[str, str]:
    """(success, cancel): absolute URLs the provider sends the customer back to.

    Stripe puts the checkout session's id in place of {CHECKOUT_SESSION_ID}.
    """
    base = current_app.config["PUBLIC_URL"]
    success = base + url_for("payments.returned", invoice_id=invoice_id) + "&session_id={CHECKOUT_SESSION_ID}"
    cancel = base + url_for("account.invoice", invoice_id=invoice_id, payment="canceled")
    return success, cancel


def demo_checkout_url(token: str) -> str:
    """The demo provider's local checkout page for a token."""
    return url_for("payments.demo_checkout", token=token)


def card_return_urls() -> tuple[str, str]:
    """(success, cancel) of a card set-up: back to the account page's payment method."""
    base = current_app.config["PUBLIC_URL"]
    success = base + url_for("payments.card_returned") + "?session_id={CHECKOUT_SESSION_ID}"
    cancel = base + url_for("account.account", card="canceled", _anchor="payment-method")
    return success, cancel


def demo_setup_url(token: str) -> str:
    """The demo provider's local "add a card" page for a token."""
    return url_for("payments.demo_card", token=token)
