import pytest

from portal.billing.money import exponent, format_money, parse_major, prorate


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (12900, "USD", "$129.00"),
        (5, "EUR", "€0.05"),
        (500, "JPY", "¥500"),
        (1234, "KWD", "KWD1.234"),
        (123456789, "USD", "$1,234,567.89"),
        (0, "USD", "$0.00"),
    ],
)
def test_format_money(amount, currency, text):
    assert format_money(amount, currency) == text


@pytest.mark.parametrize("currency, digits", [("USD", 2), ("jpy", 0), ("KRW", 0), ("BHD", 3)])
def test_exponent(currency, digits):
    assert exponent(currency) == digits


def test_parse_major_respects_currency_digits():
    assert parse_major("129.00", "USD") == 12900
    assert parse_major("500", "JPY") == 500
    with pytest.raises(ValueError):
        parse_major("1.5", "JPY")


@pytest.mark.parametrize(
    "amount, num, den, expected",
    [(7000, 15, 30, 3500), (1000, 1, 3, 333), (1000, 2, 3, 667), (5, 1, 2, 3), (7000, 0, 30, 0), (7000, 30, 30, 7000)],
)
def test_prorate_rounds_half_up_in_integers(amount, num, den, expected):
    assert prorate(amount, num, den) == expected
