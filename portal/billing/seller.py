"""Who issues the invoices: the seller's details, read from configuration in one place.

The app builds a `Seller` from its config (`Seller.from_config`); pages, mails, the
staff console and the PDF documents all take their name, address and tax ID from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_NAME = "Acme Billing"  # the demo default only: set SELLER_NAME


@dataclass(frozen=True)
class Seller:
    name: str = DEFAULT_NAME  # the product or brand name shown on every page and mail
    legal_name: str = ""  # the company that issues the invoices, if other than the name
    address: tuple[str, ...] = ()  # postal address, one line each
    country: str = ""  # ISO 3166 alpha-2
    tax_id: str = ""  # VAT / GST / EIN number printed on invoices
    email: str = ""  # support address printed on invoices and mails
    logo: str = ""  # a file path or an http(s) URL

    @property
    def issuer(self) -> str:
        """The name an invoice is issued under: the legal name if there is one."""
        return self.legal_name or self.name

    @property
    def logo_is_url(self) -> bool:
        return self.logo.startswith(("http://", "https://"))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Seller:
        address = str(config.get("SELLER_ADDRESS") or "").replace("\\n", "\n")
        return cls(
            name=str(config.get("SELLER_NAME") or DEFAULT_NAME).strip(),
            legal_name=str(config.get("SELLER_LEGAL_NAME") or "").strip(),
            address=tuple(line.strip() for line in address.splitlines() if line.strip()),
            country=str(config.get("SELLER_COUNTRY") or "").strip().upper(),
            tax_id=str(config.get("SELLER_TAX_ID") or "").strip(),
            email=str(config.get("SELLER_EMAIL") or "").strip(),
            logo=str(config.get("SELLER_LOGO") or "").strip(),
        )
