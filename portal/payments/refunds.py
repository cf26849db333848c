"""Giving money back through the provider that took it, in the order that makes a double refund impossible.

The refund is recorded (pending) and COMMITTED by the caller first (billing.credits.start_refund
or a credit note), with the payment row locked while what is left to refund is computed.
Then the provider is called with the refund's own idempotency key ("refund-<id>"): a repeat
(a retried click, a crash between the calls) is the same refund at the provider. Its answer
is recorded and committed; a refund Stripe reports later (`charge.refunded`) is settled by
the webhook. Free of Flask: the caller passes the configuration, the clock and `commit`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select

from ..billing import credits
from ..models import REF_PENDING, DbSession, Payment, Refund
from .errors import PaymentError
from .gateway import StripeGateway

log = logging.getLogger(__name__)


class DemoRefunds:
    """The offline demo provider gives money back at once."""

    provider = "demo"

    def refund(self, payment_ref: str, amount: int, key: str, refund_id: int) -> tuple[str, str]:
        return f"re_demo_{refund_id}", "succeeded"


def refund_provider(config: Mapping[str, Any], provider: str) -> StripeGateway | DemoRefunds:
    """The provider that took the payment gives it back."""
    if provider == "stripe":
        if not config["STRIPE_SECRET_KEY"]:
            raise PaymentError("Stripe is not configured: this payment cannot be refunded from here.")
        return StripeGateway(config["STRIPE_SECRET_KEY"], config["STRIPE_WEBHOOK_SECRET"], config["STRIPE_API_BASE"])
    return DemoRefunds()


def send(
    session: DbSession,
    config: Mapping[str, Any],
    refund_ids: Iterable[int],
    now: dt.datetime,
    commit: Callable[[], None],
) -> list[Refund]:
    """Ask the provider for each pending refund (already committed), record and commit its answer.

    A provider that cannot be reached leaves the refund pending (sent again with the same
    key by the next attempt); a refusal marks it failed, which frees the amount again.
    """
    done = []
    for refund_id in refund_ids:
        refund = session.get(Refund, refund_id)
        if refund is None or refund.status != REF_PENDING:
            continue
        payment = session.get(Payment, refund.payment_id)
        assert payment is not None
        what = (payment.provider, payment.provider_ref, refund.amount, f"refund-{refund.id}", refund.id)
        try:
            provider = refund_provider(config, what[0])
            ref, state = provider.refund(what[1], what[2], what[3], what[4])
        except PaymentError as exc:
            if exc.retryable:
                log.warning("refund %s left pending: %s", refund_id, exc)
                refund.error = str(exc)[:2000]
            else:
                credits.record_refund_outcome(session, refund_id, False, "", now, str(exc))
        else:
            if state == "pending":
                refund.provider_ref = ref
                refund.updated_at = now
            else:
                credits.record_refund_outcome(session, refund_id, state == "succeeded", ref, now, "refused")
        session.flush()
        commit()
        done.append(refund)
    return done


def settle_from_stripe(session: DbSession, gateway: StripeGateway, charge_id: str, now: dt.datetime) -> int:
    """A `charge.refunded` webhook: each refund of the charge, fetched again, settles ours."""
    settled = 0
    for ours, ref, state in gateway.refunds_of_charge(charge_id):
        refund_id = ours
        if refund_id is None:  # made in Stripe's dashboard, or our metadata lost: match by Stripe's id
            refund_id = session.scalar(select(Refund.id).where(Refund.provider_ref == ref))
        if refund_id is None or state == "pending":
            if refund_id is None:
                log.info("refund %s of charge %s is not one of ours", ref, charge_id)
            continue
        credits.record_refund_outcome(session, refund_id, state == "succeeded", ref, now, "refused by Stripe")
        settled += 1
    return settled
