"""The knobs of the billing rules, passed in by whoever runs them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .seller import Seller


@dataclass(frozen=True)
class BillingSettings:
    due_days: int = 14  # an invoice is due this many days after issue
    reminder_days: tuple[int, ...] = (-3, 0, 3, 7)  # reminder steps, days relative to due
    past_due_after_days: int = 7  # overdue this long -> subscription past_due
    chunk_size: int = 10_000  # subscriptions per transaction in a run
    retry_days: tuple[int, ...] = (1, 3, 5, 7)  # a failed charge is tried again this many days after the first failure
    cancel_after_days: int = 0  # after the last failed retry: cancel this many days later (0: leave it past_due)
    seller_country: str = ""  # ISO alpha-2; decides EU reverse charge (billing/taxes.py)
    invoice_prefix: str = "INV"  # invoice numbers read "INV-000042" (billing/numbering.py)
    invoice_number_per_year: bool = False  # "INV-2026-000042", starting at 1 each year
    price_change_notice_days: int = 30  # a new price reaches existing subscribers this long after the notice
    credit_note_prefix: str = "CN"  # credit notes read "CN-000007": a gapless sequence of their own
    seller: Seller = field(default_factory=Seller)  # numbered invoices keep a copy (billing/seller.py)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BillingSettings:
        return cls(
            due_days=config["BILLING_DUE_DAYS"],
            reminder_days=tuple(sorted(config["BILLING_REMINDER_DAYS"])),
            past_due_after_days=config["BILLING_PAST_DUE_AFTER_DAYS"],
            chunk_size=config["BILLING_CHUNK_SIZE"],
            retry_days=tuple(sorted(config.get("BILLING_RETRY_DAYS", (1, 3, 5, 7)))),
            cancel_after_days=config.get("BILLING_CANCEL_AFTER_DAYS", 0),
            seller_country=(config.get("SELLER_COUNTRY") or "").upper(),
            invoice_prefix=config.get("INVOICE_PREFIX") or "INV",
            invoice_number_per_year=bool(config.get("INVOICE_NUMBER_PER_YEAR", False)),
            price_change_notice_days=int(config.get("PRICE_CHANGE_NOTICE_DAYS", 30)),
            credit_note_prefix=config.get("CREDIT_NOTE_PREFIX") or "CN",
            seller=Seller.from_config(config),
        )
