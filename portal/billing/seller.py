"""Who issues the invoices: the seller's details, read from configuration in one place.

The app builds a `Seller` from its config (`Seller.from_config`); pages, mails and the
staff console take their name from it. An invoice, once numbered, points at a copy of
the details it was issued under (`snapshot_id`, a `SellerSnapshot` row per distinct set),
and its documents show that copy (`as_issued`): changing SELLER_ADDRESS or the VAT ID
later does not rewrite invoices already sent. Only the logo is always today's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from ..models import DbSession, SellerSnapshot
from .sql import insert_ignoring_duplicates
from .taxes import EU_COUNTRIES

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

    def missing(self) -> list[str]:
        """The settings an invoice legally needs that are not set (an EU seller's VAT ID among them)."""
        wanted = {
            "SELLER_NAME": self.name != DEFAULT_NAME or bool(self.legal_name),
            "SELLER_ADDRESS": bool(self.address),
            "SELLER_COUNTRY": bool(self.country),
            "SELLER_TAX_ID": bool(self.tax_id) or self.country not in EU_COUNTRIES,
        }
        return [name for name, present in wanted.items() if not present]

    @property
    def details(self) -> dict[str, str]:
        """What an invoice keeps of the seller (the logo aside), as SellerSnapshot columns."""
        return {
            "name": self.name,
            "legal_name": self.legal_name,
            "address": "\n".join(self.address),
            "country": self.country,
            "tax_id": self.tax_id,
            "email": self.email,
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.details, sort_keys=True).encode()).hexdigest()


def snapshot_id(session: DbSession, seller: Seller) -> int:
    """The id of the SellerSnapshot holding `seller`'s details, written the first time they are used."""
    digest = seller.digest
    found = select(SellerSnapshot.id).where(SellerSnapshot.digest == digest)
    if (existing := session.scalar(found)) is not None:
        return existing
    # A concurrent first use of the same details inserts nothing here and reads theirs.
    session.execute(
        insert_ignoring_duplicates(session, SellerSnapshot.__table__).values(digest=digest, **seller.details)
    )
    return int(session.scalars(found).one())


def as_issued(snapshot: SellerSnapshot | None, current: Seller) -> Seller:
    """The seller an invoice shows: the details it was issued under (today's logo), or today's
    details for an invoice issued before invoices kept them."""
    if snapshot is None:
        return current
    return replace(
        current,
        name=snapshot.name,
        legal_name=snapshot.legal_name,
        address=tuple(snapshot.address.splitlines()),
        country=snapshot.country,
        tax_id=snapshot.tax_id,
        email=snapshot.email,
    )
