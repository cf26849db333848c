"""What a payment provider says about a checkout, in the app's own terms."""
from __future__ import annotations

from dataclasses import dataclass

PAID, PROCESSING, FAILED, EXPIRED, OPEN = "paid", "processing", "failed", "expired", "open"


@dataclass(frozen=True)
class Checkout:
    provider: str          # 'stripe' | 'demo'
    ref: str               # the provider's checkout (session) id
    invoice_id: int | None
    amount: int            # minor units, as the provider reports them
    currency: str
    state: str             # PAID | PROCESSING | FAILED | EXPIRED | OPEN
    url: str = ""          # where the customer pays, while OPEN
    payment_ref: str = ""  # the provider's payment (intent) id, when there is one


class PaymentError(Exception):
    """The provider refused or could not be reached; the message is safe to show.

    `retryable`: the provider was unreachable or failed (try again later), as
    opposed to refusing the request (trying again would not help).
    """

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable
