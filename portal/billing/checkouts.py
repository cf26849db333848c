"""What a payment provider says about a checkout, in the app's own terms.

Provider-neutral: the payment providers (portal/payments/) translate their sessions
into a Checkout, and the invoice lifecycle (invoices.fulfil) records it.
"""

from __future__ import annotations

from dataclasses import dataclass

PAID, PROCESSING, FAILED, EXPIRED, OPEN = "paid", "processing", "failed", "expired", "open"


@dataclass(frozen=True)
class Checkout:
    provider: str  # 'stripe' | 'demo' | 'manual'
    ref: str  # the provider's checkout (session) id
    invoice_id: int | None
    amount: int  # minor units, as the provider reports them
    currency: str
    state: str  # PAID | PROCESSING | FAILED | EXPIRED | OPEN
    url: str = ""  # where the customer pays, while OPEN
    payment_ref: str = ""  # the provider's payment (intent) id, when there is one
