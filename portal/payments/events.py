"""Stripe's webhook events: which ones the app acts on, whether a verified one can be
processed, and acting on one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from ..billing import collection
from ..billing.invoices import fulfil
from ..billing.settings import BillingSettings
from ..inputs import BadInput, check_text
from ..models import DbSession, PaymentAttempt, User
from . import refunds
from .gateway import StripeGateway, failed

CHECKOUT_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}


# Saved cards and off-session charges: each names the object to fetch again.
CARD_EVENTS = {"setup_intent.succeeded", "payment_method.attached", "payment_method.detached"}
CHARGE_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed"}
# A charge given back (in part): its refunds are fetched again and settle ours (payments/refunds.py).
REFUND_EVENTS = {"charge.refunded", "charge.refund.updated"}
OBJECT_EVENTS = CHECKOUT_EVENTS | CARD_EVENTS | CHARGE_EVENTS | REFUND_EVENTS


def _text(value: Any, limit: int = 255) -> bool:
    """A string the database can store: 1..limit characters, no NUL, no lone surrogate."""
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return False
    try:
        check_text(value, "The value")
    except BadInput:
        return False
    return True


def malformed(event: dict[str, Any]) -> str | None:
    """Why a verified event cannot be processed (no id to store it by, no session to fetch)."""
    if not _text(event.get("id")):
        return "The event has no valid 'id'."
    if not _text(event.get("type"), limit=120):  # WebhookEvent.type is a VARCHAR(120)
        return "The event has no valid 'type'."
    if event["type"] in OBJECT_EVENTS:
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict) or not _text(obj.get("id")):
            return "The event has no 'data.object.id' naming the object it is about."
    return None


def handle(
    session: DbSession,
    stripe_gateway: StripeGateway,
    event: dict[str, Any],
    now: dt.datetime,
    settings: BillingSettings,
) -> int | None:
    """Act on a well-formed event: the object it names is fetched again (the payload is
    never trusted) and recorded; other types are only recorded. Returns the id of a
    customer whose new card should charge their open invoices now (the caller does, after
    committing). PaymentError if Stripe cannot be asked."""
    kind, object_id = event["type"], event.get("data", {}).get("object", {}).get("id", "")
    if kind == "checkout.session.completed" and event["data"]["object"].get("mode") == "setup":
        found = stripe_gateway.fetch_setup(object_id)
        return _save(session, found, now)
    if kind == "setup_intent.succeeded":
        return _save(session, stripe_gateway.setup_intent_card(object_id), now)
    if kind == "payment_method.attached":
        return _save(session, stripe_gateway.card(object_id), now)
    if kind == "payment_method.detached":
        collection.forget_card(session, object_id, now)
        return None
    if kind in REFUND_EVENTS:
        charge = event["data"]["object"]
        charge_id = charge.get("charge") if kind == "charge.refund.updated" else object_id
        if isinstance(charge_id, str) and charge_id:
            refunds.settle_from_stripe(session, stripe_gateway, charge_id, now)
        return None
    if kind in CHARGE_EVENTS:
        key, outcome = stripe_gateway.payment_intent(object_id)
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.idempotency_key == key)) if key else None
        if attempt is not None:  # a Checkout payment's intent is fulfilled through its session instead
            collection.record_outcome(session, attempt.id, outcome, now, settings)
        return None
    if kind not in CHECKOUT_EVENTS:
        return None
    checkout = stripe_gateway.fetch(object_id)
    if kind == "checkout.session.async_payment_failed":
        checkout = failed(checkout)  # only if the fetched session does not say otherwise
    fulfil(session, checkout, now, settings)
    metadata = event["data"]["object"].get("metadata")
    wants = isinstance(metadata, dict) and metadata.get("save_card") == "1"  # re-checked on the fetched intent
    if kind == "checkout.session.completed" and checkout.payment_ref and wants:
        # Paid through Checkout with "save this card" ticked: the card charges the next invoices.
        saved = stripe_gateway.saved_card_of(checkout.payment_ref)
        if saved is not None:
            return _save(session, saved, now)
    return None


def _save(session: DbSession, found: tuple[str, collection.CardDetails] | None, now: dt.datetime) -> int | None:
    """Save a card for the customer Stripe names; the user's id, or None if it is no customer of ours."""
    if found is None:
        return None
    customer, card = found
    user = session.scalar(select(User).where(User.stripe_customer_id == customer))
    if user is None:
        return None
    collection.save_card(session, user.id, card, now)
    return user.id
