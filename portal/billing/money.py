"""Money is an int of minor units with a currency code. Never a float."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency

# Stripe's own lists: amounts in these currencies are not multiplied by 100.
ZERO_DECIMAL = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


@lru_cache(maxsize=4096)  # Babel takes ~50 µs a call; a page shows the same few amounts again and again
def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """12900, 'USD' -> '$129.00'; 500, 'JPY' -> '¥500'."""
    return format_currency(to_major(amount, currency), currency.upper(), locale=locale)


def parse_major(text: str, currency: str) -> int:
    """'129.00' in USD -> 12900. Refuses more decimals than the currency has."""
    value = Decimal(text.strip())
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {exponent(currency)} decimals")
    return int(scaled)


def prorate(amount: int, numerator: int, denominator: int) -> int:
    """amount * numerator / denominator, rounded half up, in integer arithmetic."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return (2 * amount * numerator + denominator) // (2 * denominator)
