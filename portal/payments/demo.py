"""The offline demo provider: a local checkout page standing in for Stripe.

A demo checkout is a signed, time-limited token naming the invoice and amount;
paying it ends in the same fulfil() as a Stripe payment.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..billing.checkouts import OPEN, PAID, Checkout
from ..models import Invoice

MAX_AGE = 24 * 3600


class DemoGateway:
    provider = "demo"

    def __init__(self, secret_key: str, checkout_url):
        self.signer = URLSafeTimedSerializer(secret_key, salt="demo-checkout")
        self.checkout_url = checkout_url  # token -> URL of the local checkout page

    def start(self, invoice: Invoice, user, success_url: str, cancel_url: str) -> Checkout:
        token = self.signer.dumps(
            {"i": invoice.id, "a": invoice.total, "c": invoice.currency, "n": secrets.token_hex(8)}
        )
        return Checkout("demo", token, invoice.id, invoice.total, invoice.currency, OPEN, url=self.checkout_url(token))

    def read(self, token: str) -> Checkout:
        """The checkout a token stands for; ValueError if forged or expired."""
        try:
            data = self.signer.loads(token, max_age=MAX_AGE)
        except BadSignature:
            raise ValueError("this demo checkout link is invalid or has expired") from None
        return Checkout("demo", f"demo_{data['n']}", data["i"], data["a"], data["c"], OPEN)

    def pay(self, token: str) -> Checkout:
        return Checkout(**{**self.read(token).__dict__, "state": PAID})
