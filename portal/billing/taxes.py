"""Taxes: which rate applies to a customer, and the tax of each invoice line.

The rules, in one place (the billing run applies the same ones in SQL, below):

- The rate follows the customer's billing country: the active `TaxRate` of that
  country, if staff set one; none, no tax.
- EU reverse charge: a business customer (one with a valid EU VAT ID, checked when it
  was saved, see billing/customers.py) billed in an EU country other than the
  seller's (`SELLER_COUNTRY`, itself in the EU) pays 0 %, and the invoice carries
  REVERSE_CHARGE_NOTE.
- A rate is exclusive (the tax is added to the price) or inclusive (the price already
  contains it: the line's net amount is the price less the tax).

ROUNDING, the one rule: tax is computed PER LINE, in integer minor units of the
invoice's currency (cents for EUR, yen for JPY), and ROUNDED HALF UP to a whole minor
unit on each line; the invoice's tax is the sum of its lines' rounded taxes, never a
rounding of the sum. In integer arithmetic, with the rate r in millionths (25.5 % =
255 000 millionths) and a line amount A >= 0:

    exclusive:  tax = floor((2*A*r + 10**6)     / (2 * 10**6))        = round_half_up(A * r / 10**6)
                net = A
    inclusive:  tax = floor((2*A*r + (10**6+r)) / (2 * (10**6 + r))) = round_half_up(A * r / (10**6 + r))
                net = A - tax

The invoice stores subtotal = sum of nets, tax = sum of taxes, total = subtotal + tax
(what the customer pays and what Stripe charges). tests/billing/test_taxes.py holds a
worked table of this rule, and checks the SQL gives the same figures as Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, and_, case, cast, func, literal, select

from ..models import DbSession, TaxRate, User
from .sql import const

REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)"
REVERSE_CHARGE_NAME = "VAT reverse charge"

# The member states of the European Union, ISO 3166 alpha-2 (Greece is GR here, EL in VAT IDs).
EU_COUNTRIES = frozenset(
    {
        *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"),
        *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
    }
)
MILLION = 1_000_000


@dataclass(frozen=True)
class TaxTreatment:
    """How a customer's lines are taxed: the rate's name, percent, kind, and the invoice's note."""

    name: str = ""
    percent: Decimal = Decimal(0)
    inclusive: bool = False
    note: str = ""

    @property
    def millionths(self) -> int:
        return rate_millionths(self.percent)


NO_TAX = TaxTreatment()
REVERSE_CHARGE = TaxTreatment(REVERSE_CHARGE_NAME, Decimal(0), False, REVERSE_CHARGE_NOTE)


def rate_millionths(percent: Decimal | int | str) -> int:
    """25.5 (%) -> 255000: a rate as an integer of millionths (four decimals of a percent)."""
    return int((Decimal(percent) * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_tax(amount: int, percent: Decimal | int | str, inclusive: bool) -> tuple[int, int]:
    """(net, tax) of a line of `amount` minor units, by the module's rounding rule."""
    if amount < 0:
        raise ValueError("line amounts are not negative")
    r = rate_millionths(percent)
    if inclusive:
        tax = (2 * amount * r + (MILLION + r)) // (2 * (MILLION + r))
        return amount - tax, tax
    return amount, (2 * amount * r + MILLION) // (2 * MILLION)


def is_reverse_charge(billing_country: str | None, tax_id: str | None, seller_country: str) -> bool:
    """A business buyer in another EU member state than an EU seller: the buyer accounts for VAT."""
    return bool(
        tax_id
        and billing_country in EU_COUNTRIES
        and seller_country in EU_COUNTRIES
        and billing_country != seller_country
    )


def treatment_for(session: DbSession, user: User, seller_country: str) -> TaxTreatment:
    """The tax that applies to this customer's lines today."""
    if is_reverse_charge(user.billing_country, user.tax_id, seller_country):
        return REVERSE_CHARGE
    if not user.billing_country:
        return NO_TAX
    rate = session.scalar(select(TaxRate).where(TaxRate.country == user.billing_country, TaxRate.active))
    if rate is None:
        return NO_TAX
    return TaxTreatment(rate.name, Decimal(rate.percent), rate.inclusive)


@dataclass(frozen=True)
class TaxGroup:
    """One row of an invoice's tax summary: the tax of every line at one rate."""

    name: str
    percent: Decimal
    net: int
    tax: int

    @property
    def label(self) -> str:
        return f"{self.name or 'Tax'} {format_percent(self.percent)} %"


def format_percent(value: Decimal | int | str | None) -> str:
    """Decimal('25.5000') -> '25.5'; Decimal('19.0000') -> '19'; None -> '0'."""
    number = Decimal(value or 0).normalize()
    return f"{number:f}" if number else "0"


def tax_summary(lines: Any) -> list[TaxGroup]:
    """The lines' tax per (name, rate), in the order the rates first appear; untaxed lines left out."""
    groups: dict[tuple[str, Decimal], list[int]] = {}
    for line in lines:
        if not line.tax_name and not line.tax_cents:
            continue
        key = (line.tax_name, Decimal(line.tax_rate_percent or 0).normalize())
        net_tax = groups.setdefault(key, [0, 0])
        net_tax[0] += line.amount
        net_tax[1] += line.tax_cents
    return [TaxGroup(name, percent, net, tax) for (name, percent), (net, tax) in groups.items()]


# --- The same rules in SQL, for the set-based billing run -------------------------------


@dataclass(frozen=True)
class SqlTax:
    """Column expressions of one line's tax, given the price expression and the joined rate."""

    net: ColumnElement[Any]
    tax: ColumnElement[Any]
    percent: ColumnElement[Any]
    name: ColumnElement[Any]
    note: ColumnElement[Any]


def sql_reverse_charge(users: Any, seller_country: str) -> ColumnElement[bool]:
    if seller_country not in EU_COUNTRIES:
        return literal(False, Boolean)
    return and_(
        users.c.tax_id.is_not(None),
        users.c.tax_id != const(""),
        users.c.billing_country.in_(sorted(EU_COUNTRIES - {seller_country})),
    )


def sql_active_rates() -> Any:
    """The active rates, each with its rate in millionths (`r`), as a subquery to LEFT JOIN."""
    return (
        select(
            TaxRate.country,
            TaxRate.name,
            TaxRate.inclusive,
            TaxRate.percent,
            cast(func.round(TaxRate.percent * 10_000), BigInteger).label("r"),
        )
        .where(TaxRate.active == const(True))
        .subquery("rates")
    )


def sql_rate_join(users: Any, rates: Any, seller_country: str) -> ColumnElement[bool]:
    """The ON clause joining a customer to the rate of their country (none under reverse charge)."""
    return and_(rates.c.country == users.c.billing_country, ~sql_reverse_charge(users, seller_country))


def sql_line_tax(amount: ColumnElement[Any], users: Any, rates: Any, seller_country: str) -> SqlTax:
    """The module's rounding rule as SQL over `amount` (minor units, >= 0) and a LEFT JOINed
    row of sql_active_rates().

    Integer division of non-negative integers floors on both PostgreSQL and SQLite.
    """
    r = func.coalesce(rates.c.r, 0)
    exclusive_tax = (2 * amount * r + MILLION) // (2 * MILLION)
    inclusive_tax = (2 * amount * r + (MILLION + r)) // (2 * (MILLION + r))
    inclusive = func.coalesce(rates.c.inclusive, const(False))
    tax = case((inclusive, inclusive_tax), else_=exclusive_tax)
    reverse = sql_reverse_charge(users, seller_country)
    return SqlTax(
        net=case((inclusive, amount - inclusive_tax), else_=amount),
        tax=tax,
        percent=func.coalesce(rates.c.percent, 0),
        name=case((reverse, literal(REVERSE_CHARGE_NAME)), else_=func.coalesce(rates.c.name, "")),
        note=case((reverse, literal(REVERSE_CHARGE_NOTE)), else_=literal("")),
    )
