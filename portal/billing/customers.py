"""A customer's billing details: what their invoices print and what decides their tax.

Tax IDs are checked for FORMAT only (check digits included) with python-stdnum, never
looked up online, and stored normalised: an EU VAT ID compact and with its country
prefix ("DE136695976"), another country's number as stdnum's compact form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from babel import Locale
from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

from ..models import DbSession, User
from .errors import BillingError
from .taxes import EU_COUNTRIES

# ISO 3166 codes Babel names that are not countries one can be billed in.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "UN", "ZZ", "XA", "XB"})
# The VAT prefix differs from the ISO code for Greece.
_VAT_PREFIX = {"GR": "EL"}
# The names stdnum gives a country's tax number modules, most usual first.
_TAX_MODULES = ("vat", "mva", "gst", "tva", "uid", "tin", "ein", "abn", "bn", "cnpj", "rfc", "nit", "ruc", "nif")
_FREE_FORM = re.compile(r"^[A-Z0-9][A-Z0-9./-]{1,38}$")

MAX_NAME, MAX_ADDRESS = 200, 1000
DETAIL_FIELDS = ("name", "company", "address", "country", "tax_id")


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, str], ...]:
    """(code, English name) of every country, sorted by name: the choices of a form."""
    names = Locale("en").territories
    return tuple(
        sorted(
            ((code, name) for code, name in names.items() if len(code) == 2 and code.isalpha()),
            key=lambda item: item[1],
        )
    )


def country_name(code: str | None) -> str:
    """'DE' -> 'Germany'; an unknown code as it is."""
    return dict(countries()).get(code or "", code or "")


def _country_codes() -> frozenset[str]:
    return frozenset(code for code, _ in countries()) - _NOT_COUNTRIES


def _tax_modules(country: str) -> list[Any]:
    """stdnum's modules for this country's tax numbers (VAT, GST, TIN...), if it has any."""
    found: list[Any] = []
    for name in _TAX_MODULES:
        try:
            module = get_cc_module(country.lower(), name)
        except (ImportError, ValueError):
            continue
        if module is not None:
            found.append(module)
    return found


def normalise_tax_id(raw: str, country: str | None) -> str | None:
    """The tax ID in its normal form, or a BillingError saying what is wrong. Empty -> None."""
    text = (raw or "").strip().upper()
    if not text:
        return None
    if "\x00" in text or len(text) > 40:
        raise BillingError("A tax ID has at most 40 letters and digits.", "invalid_tax_id", 422)
    if not country:
        raise BillingError("Choose your country before entering a tax ID.", "invalid_tax_id", 422)
    if country in EU_COUNTRIES:
        prefix = _VAT_PREFIX.get(country, country)
        number = re.sub(r"[\s.\-/]", "", text)
        if not number[:2].isalpha():
            number = prefix + number
        if number[:2] != prefix:
            raise BillingError(
                f"This VAT ID is not from the country you chose: an ID from {country} starts with {prefix}.",
                "invalid_tax_id",
                422,
            )
        try:
            return str(eu_vat.validate(number))
        except ValidationError:
            raise BillingError(
                f"{text} is not a valid EU VAT ID for {country} (check the digits, e.g. {prefix}123456789).",
                "invalid_tax_id",
                422,
            ) from None
    modules = _tax_modules(country)
    for module in modules:
        try:
            return str(module.validate(text))
        except ValidationError:
            continue
    if modules:
        raise BillingError(f"{text} is not a valid tax ID for {country}.", "invalid_tax_id", 422)
    compact = re.sub(r"[\s]", "", text)
    if not _FREE_FORM.match(compact):
        raise BillingError("A tax ID has only letters, digits, dots, dashes and slashes.", "invalid_tax_id", 422)
    return compact


@dataclass(frozen=True)
class BillingDetails:
    name: str = ""
    company: str = ""
    address: str = ""
    country: str | None = None
    tax_id: str | None = None


def details_of(user: User) -> BillingDetails:
    return BillingDetails(
        user.billing_name, user.billing_company, user.billing_address, user.billing_country, user.tax_id
    )


def check_details(values: dict[str, Any]) -> tuple[BillingDetails, dict[str, str]]:
    """Billing details from raw text (a form or a JSON body): (the normalised details, errors by field)."""
    errors: dict[str, str] = {}

    def text(field: str, limit: int) -> str:
        value = values.get(field)
        if value is None:
            return ""
        if not isinstance(value, str):
            errors[field] = "Must be text."
            return ""
        value = value.replace("\r\n", "\n").strip()
        if "\x00" in value:
            errors[field] = "Contains a character that is not allowed."
        elif len(value) > limit:
            errors[field] = f"At most {limit} characters."
        return value

    name = text("name", MAX_NAME)
    company = text("company", MAX_NAME)
    address = text("address", MAX_ADDRESS)
    country = text("country", 2).upper() or None
    if country is not None and "country" not in errors and country not in _country_codes():
        errors["country"] = "Choose a country from the list (a two-letter ISO code such as DE or US)."
        country = None
    tax_raw = text("tax_id", 40)
    tax_id = None
    if "tax_id" not in errors:
        try:
            tax_id = normalise_tax_id(tax_raw, country)
        except BillingError as exc:
            errors["tax_id"] = exc.message
    return BillingDetails(name, company, address, country, tax_id), errors


def update_details(session: DbSession, user: User, values: dict[str, Any]) -> dict[str, str]:
    """Check and save the billing details; returns the errors by field (nothing saved if any)."""
    details, errors = check_details(values)
    if errors:
        return errors
    user.billing_name = details.name
    user.billing_company = details.company
    user.billing_address = details.address
    user.billing_country = details.country
    user.tax_id = details.tax_id
    session.flush()
    return {}
