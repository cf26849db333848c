"""Which provider takes payment, and starting a checkout for an invoice.

Shared by the portal's Pay button and the JSON API. Free of Flask: the caller passes
the app's configuration and the URLs of its own pages (see links.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..billing.checkouts import Checkout
from ..billing.invoices import unpayable_reason
from ..models import DbSession, Invoice, User
from .demo import DemoGateway
from .errors import PaymentError
from .gateway import StripeGateway


def gateway(config: Mapping[str, Any], demo_checkout_url: Callable[[str], str]) -> StripeGateway | DemoGateway:
    """Stripe when a key is configured, the local demo checkout otherwise
    (`demo_checkout_url`: a demo token -> the URL of its checkout page)."""
    if config["STRIPE_SECRET_KEY"]:
        return StripeGateway(config["STRIPE_SECRET_KEY"], config["STRIPE_WEBHOOK_SECRET"], config["STRIPE_API_BASE"])
    return DemoGateway(config["SECRET_KEY"], demo_checkout_url)


def start_payment(
    session: DbSession,
    invoice: Invoice,
    user: User,
    provider: StripeGateway | DemoGateway,
    success_url: str,
    cancel_url: str,
    save_card: bool = False,
) -> Checkout:
    """A checkout for a payable invoice of `user`; PaymentError if refused. The caller commits.

    `success_url` and `cancel_url`: where the provider sends the customer back.
    """
    reason = unpayable_reason(invoice)
    if reason is not None:
        raise PaymentError(reason)
    checkout = provider.start(invoice, user, success_url, cancel_url, save_card=save_card)
    invoice.checkout_ref = checkout.ref
    session.flush()
    return checkout
