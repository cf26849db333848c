"""The app's clock, billing settings and mail sender: one definition, used by requests,
jobs and commands alike (each runs inside an app context)."""

from __future__ import annotations

import datetime as dt

from flask import current_app

from .billing.seller import Seller
from .billing.settings import BillingSettings
from .models import DbSession, utcnow
from .notify.outbox import deliver_pending
from .notify.transport import Sender, sender_from_config
from .webhooks.sender import Sender as WebhookSender


def now() -> dt.datetime:
    """The current UTC time; tests may set CLOCK to act 'as of' another moment."""
    return current_app.config.get("CLOCK", utcnow)()


def as_of(day: dt.date | None) -> dt.datetime:
    """Now, or the given day at the current time of day (a run 'as of' a past day)."""
    moment = now()
    return moment if day is None else moment.replace(year=day.year, month=day.month, day=day.day)


def billing_settings() -> BillingSettings:
    return BillingSettings.from_config(current_app.config)


def seller() -> Seller:
    """Who issues the invoices: the seller's details from the app's configuration."""
    return Seller.from_config(current_app.config)


def mail_sender() -> Sender:
    return sender_from_config(current_app.config)


def webhook_sender() -> WebhookSender:
    config = current_app.config
    return WebhookSender(timeout=config["WEBHOOKS_TIMEOUT"], allow_private=config["WEBHOOKS_ALLOW_PRIVATE_URLS"])


def deliver_outbox(session: DbSession, moment: dt.datetime | None = None, batch: int = 100) -> int:
    """Send everything the outbox holds, one committed transaction per batch, so a
    message sent is never sent again if a later batch fails."""
    sender, sent = mail_sender(), 0
    moment = moment or now()
    while count := deliver_pending(session, sender, moment, limit=batch):
        session.commit()
        sent += count
    session.commit()
    return sent
