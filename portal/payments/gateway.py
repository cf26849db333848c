"""Stripe Checkout: create a session, fetch it, verify a webhook. Nothing else imports stripe."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import stripe

from ..billing.checkouts import EXPIRED, FAILED, OPEN, PAID, PROCESSING, Checkout
from ..billing.collection import FAILED as CHARGE_FAILED
from ..billing.collection import PENDING, REQUIRES_ACTION, SUCCEEDED, CardDetails, ChargeOutcome
from ..inputs import INT64_MAX
from ..models import Invoice, User
from .errors import PaymentError

log = logging.getLogger(__name__)


class StripeGateway:
    provider = "stripe"

    def __init__(self, secret_key: str, webhook_secrets: str = "", api_base: str = ""):
        self.client = stripe.StripeClient(
            secret_key, max_network_retries=2, base_addresses={"api": api_base} if api_base else None
        )
        self.webhook_secrets = [s.strip() for s in webhook_secrets.split(",") if s.strip()]

    def ensure_customer(self, user: User) -> str:
        """The user's Stripe Customer, created once and remembered."""
        if not user.stripe_customer_id:
            customer = self._call(
                self.client.v1.customers.create,
                {"email": user.email, "name": user.name or user.email, "metadata": {"user_id": str(user.id)}},
                f"customer-{user.id}",
            )
            user.stripe_customer_id = customer.id
        return user.stripe_customer_id

    def start(
        self, invoice: Invoice, user: User, success_url: str, cancel_url: str, save_card: bool = False
    ) -> Checkout:
        """A Checkout Session for the invoice's amount (never an amount from the request);
        `save_card`: the customer agreed, on the page, to keep the card for later invoices."""
        if invoice.checkout_ref and not save_card:
            current = self.fetch(invoice.checkout_ref)
            if current.state == OPEN:
                return current  # the customer pressed Pay twice: same session
        customer = self.ensure_customer(user)
        params = {
            "mode": "payment",
            "customer": customer,
            "client_reference_id": str(invoice.id),
            "metadata": {
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                **({"save_card": "1"} if save_card else {}),
            },
            "payment_intent_data": {
                "metadata": {"invoice_id": str(invoice.id)},
                **({"setup_future_usage": "off_session"} if save_card else {}),
            },
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": invoice.currency.lower(),
                        # Amounts are stored in Stripe's own minor units (money.exponent follows
                        # Stripe's zero- and three-decimal lists), so they go as they are: never `* 100`.
                        "unit_amount": invoice.amount_due,
                        "product_data": {"name": f"Invoice {invoice.number}"},
                    },
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        # One key per attempt: a retried request reuses the session, a new attempt
        # (after the previous session expired) gets a new one.
        key = f"checkout-{invoice.id}-after-{invoice.checkout_ref or 'none'}" + ("-save" if save_card else "")
        session = self._call(self.client.v1.checkout.sessions.create, params, key)
        return self._checkout(session)

    def fetch(self, session_id: str) -> Checkout:
        session = self._call(self.client.v1.checkout.sessions.retrieve, session_id)
        return self._checkout(session, expected_id=session_id)

    # -- saved cards and off-session charges ------------------------------------------

    def start_setup(self, user: User, success_url: str, cancel_url: str) -> str:
        """A Checkout Session in setup mode: the customer saves a card, nothing is charged."""
        params = {
            "mode": "setup",
            "customer": self.ensure_customer(user),
            "payment_method_types": ["card"],
            "metadata": {"user_id": str(user.id)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        session = self._call(self.client.v1.checkout.sessions.create, params, f"setup-{user.id}-{secrets.token_hex(8)}")
        url = session.to_dict().get("url")
        if not isinstance(url, str) or not _URL.fullmatch(url):
            raise PaymentError("the payment provider sent a set-up page this app cannot use.")
        return url

    def fetch_setup(self, session_id: str) -> tuple[str, CardDetails] | None:
        """(customer, card) of a completed setup session; None while it is not complete."""
        session = self._call(self.client.v1.checkout.sessions.retrieve, session_id).to_dict()
        if session.get("mode") != "setup" or session.get("status") != "complete":
            return None
        intent = session.get("setup_intent")
        if isinstance(intent, str):
            intent = self._call(self.client.v1.setup_intents.retrieve, _id(intent, "setup_intent")).to_dict()
        pm = intent.get("payment_method") if isinstance(intent, dict) else None
        return self.card(pm.get("id") if isinstance(pm, dict) else pm)

    def setup_intent_card(self, intent_id: str) -> tuple[str, CardDetails] | None:
        intent = self._call(self.client.v1.setup_intents.retrieve, intent_id).to_dict()
        if intent.get("status") != "succeeded":
            return None
        pm = intent.get("payment_method")
        return self.card(pm.get("id") if isinstance(pm, dict) else pm)

    def card(self, pm_id) -> tuple[str, CardDetails] | None:
        """(customer, card) of a payment method attached to a customer; None otherwise."""
        try:
            pm = self._call(self.client.v1.payment_methods.retrieve, _id(pm_id, "payment_method")).to_dict()
            card = pm.get("card") or {}
            customer = _id(pm.get("customer"), "customer", required=False)
            details = CardDetails(
                "stripe",
                _id(pm.get("id"), "id"),
                str(card.get("brand") or "card")[:32],
                str(card.get("last4") or "")[-4:],
                int(card.get("exp_month") or 0),
                int(card.get("exp_year") or 0),
            )
        except (_Untrusted, ValueError, TypeError) as exc:
            raise PaymentError(f"the payment provider sent a card this app cannot use ({exc}).") from None
        return (customer, details) if customer and len(details.last4) == 4 else None

    def charge(self, customer_ref: str, card_ref: str, amount: int, currency: str, key: str, invoice_id: int):
        """An off-session PaymentIntent, confirmed at once; the idempotency key makes a repeat
        (a crash, a retried job) the same charge. PaymentError only when Stripe could not
        answer (the attempt stays pending and is resumed with the same key)."""
        params: Any = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_ref,
            "payment_method": card_ref,
            "off_session": True,
            "confirm": True,
            "metadata": {"invoice_id": str(invoice_id), "attempt_key": key},
        }
        try:
            intent = self.client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
        except stripe.CardError as exc:
            error = exc.error
            code = (getattr(error, "decline_code", None) or exc.code or "card_declined") if error else "card_declined"
            pi = getattr(error, "payment_intent", None) if error else None
            ref = pi.get("id", "") if isinstance(pi, dict) else getattr(pi, "id", "") or ""
            status = REQUIRES_ACTION if code == "authentication_required" else CHARGE_FAILED
            return ChargeOutcome(status, "stripe", ref, code)
        except stripe.StripeError as exc:
            log.warning("stripe error %s on charge: %s", type(exc).__name__, exc.code)
            retryable = (
                isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (exc.http_status or 500) >= 500
            )
            if retryable:
                raise PaymentError("the payment provider could not be reached.", retryable=True) from exc
            return ChargeOutcome(CHARGE_FAILED, "stripe", "", exc.code or "processing_error")
        return _charge_outcome(intent.to_dict())

    def payment_intent(self, intent_id: str) -> tuple[str, ChargeOutcome]:
        """(attempt key, outcome) of a PaymentIntent, re-fetched (a webhook's payload is never trusted)."""
        intent = self._call(self.client.v1.payment_intents.retrieve, intent_id).to_dict()
        metadata = intent.get("metadata") or {}
        return str(metadata.get("attempt_key") or ""), _charge_outcome(intent)

    def saved_card_of(self, intent_id: str) -> tuple[str, CardDetails] | None:
        """The card a Checkout payment saved for later (setup_future_usage), if it did."""
        intent = self._call(self.client.v1.payment_intents.retrieve, _id(intent_id, "payment_intent")).to_dict()
        if intent.get("setup_future_usage") != "off_session" or not intent.get("payment_method"):
            return None
        pm = intent["payment_method"]
        return self.card(pm.get("id") if isinstance(pm, dict) else pm)

    def refund(self, payment_ref: str, amount: int, key: str, refund_id: int) -> tuple[str, str]:
        """Give back `amount` of a payment (its Checkout session or PaymentIntent id) through the
        Refund API; (refund id, 'succeeded' | 'pending' | 'failed'). The idempotency key makes a
        repeat the same refund. PaymentError when Stripe could not answer or refused."""
        intent = payment_ref
        if not payment_ref.startswith("pi_"):
            checkout = self.fetch(payment_ref)
            intent = checkout.payment_ref
            if not intent:
                raise PaymentError("this payment has no PaymentIntent to refund.", retryable=False)
        params = {"payment_intent": intent, "amount": amount, "metadata": {"refund_id": str(refund_id)}}
        found = self._call(self.client.v1.refunds.create, params, idempotency_key=key).to_dict()
        return _refund_state(found)

    def refunds_of_charge(self, charge_id: str) -> list[tuple[int | None, str, str]]:
        """The refunds of a charge, fetched again (a `charge.refunded` payload is never trusted):
        (our refund id from its metadata or None, Stripe's refund id, state)."""
        listed = self._call(self.client.v1.refunds.list, {"charge": _id(charge_id, "charge"), "limit": 100})
        out = []
        for item in listed.to_dict().get("data") or []:
            ref, state = _refund_state(item)
            raw = (item.get("metadata") or {}).get("refund_id")
            ours = int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 19 else None
            out.append((ours, ref, state))
        return out

    def detach(self, card_ref: str) -> None:
        self._call(self.client.v1.payment_methods.detach, card_ref)

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
            retryable = (
                isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (exc.http_status or 500) >= 500
            )
            raise PaymentError(message, retryable=retryable) from exc

    @staticmethod
    def _checkout(session, expected_id: str | None = None) -> Checkout:
        """The app's view of a Checkout Session; PaymentError (not retryable) for a session
        whose fields the database could not hold or the app could not trust."""
        try:
            return _trusted_checkout(session.to_dict(), expected_id)
        except _Untrusted as exc:
            log.warning("untrusted checkout session %r: %s", expected_id, exc)
            raise PaymentError(
                f"the payment provider sent a checkout session this app cannot use ({exc}).", retryable=False
            ) from None


class _Untrusted(ValueError):
    """Why a session from the provider cannot be recorded."""


# Stripe ids are short printable ASCII ("cs_test_a1B2..."): no spaces, controls or non-ASCII.
_ID = re.compile(r"[\x21-\x7e]{1,255}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_URL = re.compile(r"https?://[\x21-\x7e]{1,2000}")


def _id(value, what: str, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise _Untrusted(f"no {what}")
        return ""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _Untrusted(f"its {what} is not a valid id")
    return value


def _trusted_checkout(data: dict, expected_id: str | None) -> Checkout:
    if data.get("object") != "checkout.session":
        raise _Untrusted("it is not a checkout session")
    ref = _id(data.get("id"), "id")
    if expected_id is not None and ref != expected_id:
        raise _Untrusted("it is not the session asked for")

    status, payment_status = data.get("status"), data.get("payment_status")
    if status == "expired":
        state = EXPIRED
    elif payment_status in ("paid", "no_payment_required"):
        state = PAID
    elif status == "complete":
        state = PROCESSING  # async methods: completed, money not yet in
    else:
        state = OPEN

    client_ref = data.get("client_reference_id")
    if client_ref is None or client_ref == "":
        invoice_id = None
    elif (
        isinstance(client_ref, str)
        and client_ref.isascii()
        and client_ref.isdigit()
        and 1 <= int(client_ref) <= INT64_MAX
    ):
        invoice_id = int(client_ref)
    else:
        raise _Untrusted("its client_reference_id is not an invoice id")

    amount = data.get("amount_total")
    if amount is None:
        amount = 0
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= INT64_MAX:
        raise _Untrusted("its amount_total is not a whole number from 0 to 2^63-1")

    currency = data.get("currency") or ""
    if not isinstance(currency, str) or (currency and not _CURRENCY.fullmatch(currency)):
        raise _Untrusted("its currency is not a three-letter code")

    url = ""
    if state == OPEN:  # only an open session is a page to send the customer to
        given = data.get("url")
        if not isinstance(given, str) or not _URL.fullmatch(given):
            raise _Untrusted("its url is not an http(s) address")
        url = given

    pi = data.get("payment_intent")
    payment_ref = _id(pi.get("id") if isinstance(pi, dict) else pi, "payment_intent", required=False)
    return Checkout(
        provider="stripe",
        ref=ref,
        invoice_id=invoice_id,
        amount=amount,
        currency=currency.upper(),
        state=state,
        url=url,
        payment_ref=payment_ref,
    )


def _refund_state(refund: dict) -> tuple[str, str]:
    ref = _id(refund.get("id"), "refund")
    status = refund.get("status")
    state = "succeeded" if status == "succeeded" else "failed" if status in ("failed", "canceled") else "pending"
    return ref, state


def _charge_outcome(intent: dict) -> ChargeOutcome:
    """A PaymentIntent in the app's terms: succeeded, failed, needs the customer, or still pending."""
    ref = str(intent.get("id") or "")
    status = intent.get("status")
    if status == "succeeded":
        return ChargeOutcome(SUCCEEDED, "stripe", ref)
    if status == "requires_action":
        action = (intent.get("next_action") or {}).get("redirect_to_url") or {}
        url = str(action.get("url") or "")
        url = url if _URL.fullmatch(url) else ""
        return ChargeOutcome(REQUIRES_ACTION, "stripe", ref, "authentication_required", url)
    if status in ("requires_payment_method", "canceled"):
        error = intent.get("last_payment_error") or {}
        return ChargeOutcome(
            CHARGE_FAILED, "stripe", ref, str(error.get("decline_code") or error.get("code") or "card_declined")
        )
    return ChargeOutcome(PENDING, "stripe", ref)


def failed(checkout: Checkout) -> Checkout:
    """The checkout after `async_payment_failed`: failed only while the re-fetched session
    is still waiting for the money. Events arrive late and out of order; a session Stripe
    now reports paid (or expired) is what Stripe says, whatever the event's type."""
    if checkout.state != PROCESSING:
        return checkout
    return Checkout(**{**checkout.__dict__, "state": FAILED})
