"""Charging saved cards off-session, in the order that makes a double charge impossible.

For each invoice: the attempt is recorded and COMMITTED (billing.collection.begin_attempt),
then the provider is called with the attempt's idempotency key, then the answer is
recorded and committed. A crash between the two commits leaves a pending attempt, which
`charge_due` resumes later with the same key: the provider answers a repeated key with
the first charge, never a second one. Free of Flask: jobs, commands and views pass the
session, the provider, the clock and `commit`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..billing import collection
from ..billing.collection import ChargeOutcome
from ..billing.settings import BillingSettings
from ..models import DbSession, PaymentAttempt, PaymentMethod, User
from .demo import DemoCards
from .errors import PaymentError
from .gateway import StripeGateway

log = logging.getLogger(__name__)

# Invoices charged per batch in this process (the CLI, embedded mode): one batch's
# attempts are committed together before its calls, its outcomes together after them.
BATCH = 500


class CardProvider(Protocol):
    provider: str

    def charge(
        self, customer_ref: str, card_ref: str, amount: int, currency: str, key: str, invoice_id: int
    ) -> ChargeOutcome: ...

    def detach(self, card_ref: str) -> None: ...


def card_provider(config: Mapping[str, Any], demo_setup_url: Callable[[str], str]) -> StripeGateway | DemoCards:
    """Stripe when a key is configured, the offline demo cards otherwise."""
    if config["STRIPE_SECRET_KEY"]:
        return StripeGateway(config["STRIPE_SECRET_KEY"], config["STRIPE_WEBHOOK_SECRET"], config["STRIPE_API_BASE"])
    return DemoCards(config["SECRET_KEY"], demo_setup_url)


@dataclass(frozen=True)
class _Call:
    """What the provider is sent for an attempt, read before the attempt is committed (no re-read after)."""

    attempt_id: int
    invoice_id: int
    key: str
    amount: int
    currency: str
    card_ref: str
    customer_ref: str


def _what_to_send(session: DbSession, attempt: PaymentAttempt) -> _Call:
    card = attempt.payment_method or session.get(PaymentMethod, attempt.payment_method_id)
    assert card is not None
    user = session.get(User, card.user_id)
    return _Call(
        attempt.id,
        attempt.invoice_id,
        attempt.idempotency_key,
        attempt.amount,
        attempt.currency,
        card.provider_ref,
        (user.stripe_customer_id or "") if user is not None else "",
    )


def _call(
    session: DbSession,
    provider: CardProvider,
    call: _Call,
    now: dt.datetime,
    settings: BillingSettings,
    commit: Callable[[], None],
) -> str:
    try:
        outcome = provider.charge(
            call.customer_ref, call.card_ref, call.amount, call.currency, call.key, call.invoice_id
        )
    except PaymentError as exc:
        # Not answered: the attempt stays pending and is resumed with the same key.
        log.warning("charge %s not answered: %s", call.key, exc)
        return collection.PENDING
    collection.record_outcome(session, call.attempt_id, outcome, now, settings)
    commit()
    return outcome.status


def charge_invoice(
    session: DbSession,
    provider: CardProvider,
    invoice_id: int,
    now: dt.datetime,
    settings: BillingSettings,
    commit: Callable[[], None],
    *,
    force: bool = False,
    actor_id: int | None = None,
) -> str | None:
    """Charge one invoice's saved card; the outcome's status, or None if nothing was due."""
    attempt = collection.begin_attempt(session, invoice_id, now, force=force, actor_id=actor_id)
    if attempt is None:
        commit()  # releases the invoice's row lock
        return None
    call = _what_to_send(session, attempt)
    commit()  # the attempt is on record before the provider hears of it
    return _call(session, provider, call, now, settings, commit)


def resume_attempt(
    session: DbSession,
    provider: CardProvider,
    attempt_id: int,
    now: dt.datetime,
    settings: BillingSettings,
    commit: Callable[[], None],
) -> str:
    """Call the provider again for an attempt recorded but never answered, with its own key."""
    attempt = session.get(PaymentAttempt, attempt_id)
    assert attempt is not None
    return _call(session, provider, _what_to_send(session, attempt), now, settings, commit)


def tally(statuses: Iterable[str | None]) -> dict[str, int]:
    counts = {"charges_attempted": 0, "charges_succeeded": 0, "charges_failed": 0}
    for status in statuses:
        if status is None:
            continue
        counts["charges_attempted"] += 1
        if status == collection.SUCCEEDED:
            counts["charges_succeeded"] += 1
        elif status in (collection.FAILED, collection.REQUIRES_ACTION):
            counts["charges_failed"] += 1
    return counts


def charge_invoices(
    session: DbSession,
    provider: CardProvider,
    invoice_ids: Iterable[int],
    now: dt.datetime,
    settings: BillingSettings,
    commit: Callable[[], None],
    *,
    force: bool = False,
) -> dict[str, int]:
    return tally(charge_invoice(session, provider, i, now, settings, commit, force=force) for i in invoice_ids)


def charge_batch(
    session: DbSession,
    provider: CardProvider,
    invoice_ids: Iterable[int],
    now: dt.datetime,
    settings: BillingSettings,
    commit: Callable[[], None],
) -> dict[str, int]:
    """charge_invoice() of each invoice due, the database work done per chunk: every
    attempt recorded at once and COMMITTED before the provider hears of any, then one call
    per attempt with its own idempotency key, then every answer recorded at once and
    committed. A crash between the two commits leaves the chunk's attempts pending, resumed
    later with their own keys (the provider answers a repeated key with the first charge)."""
    charges = collection.begin_attempts(session, list(invoice_ids), now)
    commit()  # the attempts are on record (and the invoices' locks released) before any call
    statuses: list[str] = []
    answered: list[tuple[int, ChargeOutcome]] = []
    for c in charges:
        try:
            outcome = provider.charge(c.customer_ref, c.card_ref, c.amount, c.currency, c.key, c.invoice_id)
        except PaymentError as exc:
            # Not answered: the attempt stays pending and is resumed with the same key.
            log.warning("charge %s not answered: %s", c.key, exc)
            statuses.append(collection.PENDING)
            continue
        answered.append((c.attempt_id, outcome))
        statuses.append(outcome.status)
    collection.record_outcomes(session, answered, now, settings)
    commit()
    return tally(statuses)


def resume_stale(
    session: DbSession, provider: CardProvider, now: dt.datetime, settings: BillingSettings, commit: Callable[[], None]
) -> dict[str, int]:
    return tally(
        resume_attempt(session, provider, a, now, settings, commit) for a in collection.stale_attempts(session, now)
    )


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), max(1, size))]


def charge_due(
    session: DbSession, provider: CardProvider, now: dt.datetime, settings: BillingSettings, commit: Callable[[], None]
) -> dict[str, int]:
    """Everything due at `now` in this process (the CLI, embedded mode): attempts cut off
    by a crash first (same key), then the invoices whose charge or retry day has come."""
    counts = resume_stale(session, provider, now, settings, commit)
    for ids in chunks(collection.due_invoice_ids(session, now), BATCH):
        done = charge_batch(session, provider, ids, now, settings, commit)
        counts = {k: counts[k] + done[k] for k in counts}
    return counts
