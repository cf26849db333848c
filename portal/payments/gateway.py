"""Stripe Checkout: create a session, fetch it, verify a webhook. Nothing else imports stripe."""
from __future__ import annotations

import logging

import stripe

from ..models import Invoice, User
from .checkout import EXPIRED, FAILED, OPEN, PAID, PROCESSING, Checkout, PaymentError

log = logging.getLogger(__name__)


def stripe_amount(amount: int, currency: str) -> int:
    """Amounts are stored in Stripe's own minor units (money.exponent follows Stripe's
    zero- and three-decimal lists), so they go to Stripe as they are: never `* 100`."""
    return amount


class StripeGateway:
    provider = "stripe"

    def __init__(self, secret_key: str, webhook_secrets: str = "", api_base: str = ""):
        options = {"base_addresses": {"api": api_base}} if api_base else {}
        self.client = stripe.StripeClient(secret_key, max_network_retries=2, **options)
        self.webhook_secrets = [s.strip() for s in webhook_secrets.split(",") if s.strip()]

    def ensure_customer(self, user: User) -> str:
        """The user's Stripe Customer, created once and remembered."""
        if not user.stripe_customer_id:
            customer = self._call(
                self.client.v1.customers.create,
                {"email": user.email, "name": user.name or user.email,
                 "metadata": {"user_id": str(user.id)}},
                f"customer-{user.id}",
            )
            user.stripe_customer_id = customer.id
        return user.stripe_customer_id

    def start(self, invoice: Invoice, user: User, success_url: str, cancel_url: str) -> Checkout:
        """A Checkout Session for the invoice's amount (never an amount from the request)."""
        if invoice.checkout_ref:
            current = self.fetch(invoice.checkout_ref)
            if current.state == OPEN:
                return current  # the customer pressed Pay twice: same session
        customer = self.ensure_customer(user)
        params = {
            "mode": "payment",
            "customer": customer,
            "client_reference_id": str(invoice.id),
            "metadata": {"invoice_id": str(invoice.id), "invoice_number": invoice.number},
            "payment_intent_data": {"metadata": {"invoice_id": str(invoice.id)}},
            "line_items": [{
                "quantity": 1,
                "price_data": {
                    "currency": invoice.currency.lower(),
                    "unit_amount": stripe_amount(invoice.total, invoice.currency),
                    "product_data": {"name": f"Invoice {invoice.number}"},
                },
            }],
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        # One key per attempt: a retried request reuses the session, a new attempt
        # (after the previous session expired) gets a new one.
        key = f"checkout-{invoice.id}-after-{invoice.checkout_ref or 'none'}"
        session = self._call(self.client.v1.checkout.sessions.create, params, key)
        return self._checkout(session)

    def fetch(self, session_id: str) -> Checkout:
        return self._checkout(self._call(self.client.v1.checkout.sessions.retrieve, session_id))

    def verify(self, payload: bytes, signature: str):
        """The event if any configured secret signed it recently; ValueError otherwise."""
        if not self.webhook_secrets:
            raise ValueError("no webhook secret configured")
        for secret in self.webhook_secrets:
            try:
                # The SDK parses the JSON before it checks the signature: anyone can send
                # a body that is not JSON, not an object, or nested past the recursion limit.
                event = stripe.Webhook.construct_event(payload, signature, secret)
            except stripe.SignatureVerificationError:
                continue
            except (ValueError, TypeError, AttributeError, RecursionError):
                raise ValueError("the body is not a JSON event") from None
            if not isinstance(event, stripe.StripeObject):
                raise ValueError("the body is not a JSON event")
            return event
        raise ValueError("bad or stale signature")

    def _call(self, method, arg, idempotency_key: str | None = None):
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        try:
            if isinstance(arg, dict):
                return method(params=arg, options=options)
            return method(arg, options=options)
        except stripe.StripeError as exc:
            message = exc.user_message or "the payment provider refused the request"
            log.warning("stripe error %s: %s", type(exc).__name__, exc.user_message or exc.code)
            retryable = isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (
                exc.http_status or 500) >= 500
            raise PaymentError(message, retryable=retryable) from exc

    @staticmethod
    def _checkout(session) -> Checkout:
        if session.status == "expired":
            state = EXPIRED
        elif session.payment_status in ("paid", "no_payment_required"):
            state = PAID
        elif session.status == "complete":
            state = PROCESSING  # async methods: completed, money not yet in
        else:
            state = OPEN
        ref = session.client_reference_id
        pi = session.payment_intent
        return Checkout(
            provider="stripe", ref=session.id,
            invoice_id=int(ref) if ref and ref.isdigit() else None,
            amount=session.amount_total or 0, currency=(session.currency or "").upper(),
            state=state, url=session.url or "",
            payment_ref=pi if isinstance(pi, str) else (pi.id if pi else ""),
        )


def failed(checkout: Checkout) -> Checkout:
    """The checkout after `async_payment_failed`: failed only while the re-fetched session
    is still waiting for the money. Events arrive late and out of order; a session Stripe
    now reports paid (or expired) is what Stripe says, whatever the event's type."""
    if checkout.state != PROCESSING:
        return checkout
    return Checkout(**{**checkout.__dict__, "state": FAILED})
