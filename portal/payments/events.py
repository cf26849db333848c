"""Stripe's webhook events: which ones the app acts on, whether a verified one can be
processed, and acting on one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..billing.invoices import fulfil
from ..billing.settings import BillingSettings
from ..inputs import BadInput, check_text
from ..models import DbSession
from .gateway import StripeGateway, failed

CHECKOUT_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}


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
    if event["type"] in CHECKOUT_EVENTS:
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict) or not _text(obj.get("id")):
            return "The event has no 'data.object.id' naming a Checkout Session."
    return None


def handle(
    session: DbSession,
    stripe_gateway: StripeGateway,
    event: dict[str, Any],
    now: dt.datetime,
    settings: BillingSettings,
) -> None:
    """Act on a well-formed event: a checkout's session is fetched again (the payload is
    never trusted) and fulfilled; other types are only recorded. PaymentError if Stripe
    cannot be asked."""
    if event["type"] not in CHECKOUT_EVENTS:
        return
    checkout = stripe_gateway.fetch(event["data"]["object"]["id"])
    if event["type"] == "checkout.session.async_payment_failed":
        checkout = failed(checkout)  # only if the fetched session does not say otherwise
    fulfil(session, checkout, now, settings)
