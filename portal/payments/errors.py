"""A payment provider's refusal, in the app's own terms."""

from __future__ import annotations


class PaymentError(Exception):
    """The provider refused or could not be reached; the message is safe to show.

    `retryable`: the provider was unreachable or failed (try again later), as
    opposed to refusing the request (trying again would not help).
    """

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable
