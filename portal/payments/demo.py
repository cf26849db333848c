"""The offline demo provider: a local checkout page standing in for Stripe.

A demo checkout is a signed, time-limited token naming the invoice and amount;
paying it ends in the same fulfil() as a Stripe payment.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..billing.checkouts import OPEN, PAID, Checkout
from ..billing.collection import FAILED, REQUIRES_ACTION, SUCCEEDED, CardDetails, ChargeOutcome
from ..models import Invoice

MAX_AGE = 24 * 3600


class DemoGateway:
    provider = "demo"

    def __init__(self, secret_key: str, checkout_url):
        self.signer = URLSafeTimedSerializer(secret_key, salt="demo-checkout")
        self.checkout_url = checkout_url  # token -> URL of the local checkout page

    def start(self, invoice: Invoice, user, success_url: str, cancel_url: str, save_card: bool = False) -> Checkout:
        token = self.signer.dumps(
            {"i": invoice.id, "a": invoice.amount_due, "c": invoice.currency, "n": secrets.token_hex(8), "s": save_card}
        )
        url = self.checkout_url(token)
        return Checkout("demo", token, invoice.id, invoice.amount_due, invoice.currency, OPEN, url=url)

    def read(self, token: str) -> Checkout:
        """The checkout a token stands for; ValueError if forged or expired."""
        try:
            data = self.signer.loads(token, max_age=MAX_AGE)
        except BadSignature:
            raise ValueError("this demo checkout link is invalid or has expired") from None
        return Checkout("demo", f"demo_{data['n']}", data["i"], data["a"], data["c"], OPEN)

    def wants_card_saved(self, token: str) -> bool:
        try:
            return bool(self.signer.loads(token, max_age=MAX_AGE).get("s"))
        except BadSignature:
            return False

    def pay(self, token: str) -> Checkout:
        return Checkout(**{**self.read(token).__dict__, "state": PAID})


# Stripe's documented test cards, and what each does off-session (as Stripe does in test mode).
OK, DECLINE, AUTH, FUNDS = "ok", "decline", "auth", "funds"
TEST_CARDS = {
    "4242424242424242": (OK, "visa"),
    "5555555555554444": (OK, "mastercard"),
    "4000000000000341": (DECLINE, "visa"),  # attaches, every off-session charge is declined
    "4000002500003155": (AUTH, "visa"),  # off-session charges need the customer to authenticate
    "4000000000009995": (FUNDS, "visa"),  # declined: insufficient funds
}
TEST_CARD_LIST = "4242 4242 4242 4242, 4000 0000 0000 0341, 4000 0025 0000 3155 or 4000 0000 0000 9995"


class DemoCards:
    """The demo provider's saved cards and off-session charges, offline.

    A card's reference names its behaviour (`pm_demo_<behaviour>_<nonce>`), so a charge
    needs no server state: the same idempotency key always gives the same answer and the
    same charge reference (the Payment's unique provider_ref records it once).
    """

    provider = "demo"

    def __init__(self, secret_key: str, setup_url):
        self.signer = URLSafeTimedSerializer(secret_key, salt="demo-setup")
        self.setup_url = setup_url  # token -> URL of the local "add a card" page

    def start_setup(self, user, success_url: str, cancel_url: str) -> str:
        return self.setup_url(self.signer.dumps({"u": user.id, "n": secrets.token_hex(8)}))

    def read_setup(self, token: str) -> tuple[int, str]:
        """(user id, nonce) of a setup token; ValueError if forged or expired."""
        try:
            data = self.signer.loads(token, max_age=MAX_AGE)
            return int(data["u"]), str(data["n"])
        except (BadSignature, KeyError, TypeError, ValueError):
            raise ValueError("this card set-up link is invalid or has expired") from None

    @staticmethod
    def card(number: str, exp_month: int, exp_year: int, nonce: str = "") -> CardDetails:
        """The card a customer typed; ValueError (with what to do) if it is not a test card.
        `nonce`: the set-up's own, so the same set-up submitted twice is one card."""
        digits = "".join(number.split())
        if digits not in TEST_CARDS:
            raise ValueError(f"In test mode, use one of Stripe's test cards: {TEST_CARD_LIST}.")
        behaviour, brand = TEST_CARDS[digits]
        return CardDetails(
            "demo", f"pm_demo_{behaviour}_{nonce or secrets.token_hex(6)}", brand, digits[-4:], exp_month, exp_year
        )

    def charge(self, customer_ref: str, card_ref: str, amount: int, currency: str, key: str, invoice_id: int):
        behaviour = card_ref.split("_")[2] if card_ref.startswith("pm_demo_") else DECLINE
        ref = f"demo_ch_{key}"
        if behaviour == OK:
            return ChargeOutcome(SUCCEEDED, "demo", ref)
        if behaviour == AUTH:
            return ChargeOutcome(REQUIRES_ACTION, "demo", ref, "authentication_required")
        return ChargeOutcome(FAILED, "demo", ref, "insufficient_funds" if behaviour == FUNDS else "card_declined")

    def detach(self, card_ref: str) -> None:
        """Nothing is held anywhere else."""
