"""Taxes: the rounding rule on a worked table, which rate applies, and the billing run's SQL
giving the same figures as Python.

THE RULE (portal/billing/taxes.py): tax per line, in integer minor units of the
currency, rounded half up on each line; inclusive rates take the tax out of the price.

Worked table (amounts in minor units: cents, or yen for JPY):

| case                    | amount | rate   | kind      | exact tax            | tax | net  | total |
|-------------------------|--------|--------|-----------|----------------------|-----|------|-------|
| exclusive 19 %          | 2900   | 19     | exclusive | 551                  | 551 | 2900 | 3451  |
| exclusive, decimals     | 999    | 25.5   | exclusive | 254.745              | 255 | 999  | 1254  |
| exclusive, decimals     | 2900   | 25.5   | exclusive | 739.5    (half: up)  | 740 | 2900 | 3640  |
| half up, not to even    | 25     | 10     | exclusive | 2.5                  | 3   | 25   | 28    |
| half up                 | 15     | 10     | exclusive | 1.5                  | 2   | 15   | 17    |
| below half              | 2      | 20     | exclusive | 0.4                  | 0   | 2    | 2     |
| inclusive 24 %          | 1000   | 24     | inclusive | 1000*24/124 = 193.55 | 194 | 806  | 1000  |
| inclusive, decimals     | 2900   | 25.5   | inclusive | 589.24               | 589 | 2311 | 2900  |
| inclusive, half up      | 3      | 20     | inclusive | 3*20/120 = 0.5       | 1   | 2    | 3     |
| zero rate               | 2900   | 0      | exclusive | 0                    | 0   | 2900 | 2900  |
| JPY (no minor unit)     | 1234   | 10     | exclusive | 123.4                | 123 | 1234 | 1357  |
| JPY, half up            | 1235   | 10     | exclusive | 123.5                | 124 | 1235 | 1359  |
| JPY inclusive 8 %       | 1000   | 8      | inclusive | 1000*8/108 = 74.07   | 74  | 926  | 1000  |

An invoice's tax is the sum of its lines' rounded taxes: two lines of 25 cents at 10 %
are 3 + 3 = 6 cents, not round(5.0) = 5.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.billing import taxes
from portal.billing.invoicing import run_billing
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import change_plan, find_plan, subscribe
from portal.models import Invoice, InvoiceLine, Plan, TaxRate
from tests.conftest import utc

WORKED = [
    # amount, percent, inclusive, tax, net
    (2900, "19", False, 551, 2900),
    (999, "25.5", False, 255, 999),
    (2900, "25.5", False, 740, 2900),
    (25, "10", False, 3, 25),
    (15, "10", False, 2, 15),
    (2, "20", False, 0, 2),
    (1000, "24", True, 194, 806),
    (2900, "25.5", True, 589, 2311),
    (3, "20", True, 1, 2),
    (2900, "0", False, 0, 2900),
    (1234, "10", False, 123, 1234),
    (1235, "10", False, 124, 1235),
    (1000, "8", True, 74, 926),
]


@pytest.mark.parametrize("amount, percent, inclusive, tax, net", WORKED)
def test_line_tax_follows_the_worked_table(amount, percent, inclusive, tax, net):
    assert taxes.line_tax(amount, Decimal(percent), inclusive) == (net, tax)


def test_the_invoice_tax_is_the_sum_of_rounded_line_taxes():
    lines = [taxes.line_tax(25, Decimal(10), False) for _ in range(2)]
    assert sum(tax for _, tax in lines) == 6


def test_a_rate_with_four_decimals_is_exact():
    assert taxes.rate_millionths(Decimal("25.5")) == 255_000
    assert taxes.rate_millionths(Decimal("7.6543")) == 76_543
    assert taxes.line_tax(1_000_000, Decimal("7.6543"), False) == (1_000_000, 76_543)


@pytest.mark.parametrize(
    "country, tax_id, seller, reverse",
    [
        ("DE", "DE136695976", "FI", True),  # business in another EU state
        ("FI", "FI20774740", "FI", False),  # same country as the seller: domestic VAT
        ("DE", None, "FI", False),  # a consumer pays the rate of their country
        ("US", "12-3456789", "FI", False),  # outside the EU: no reverse charge
        ("DE", "DE136695976", "US", False),  # a seller outside the EU
        ("DE", "DE136695976", "", False),  # seller country not configured
    ],
)
def test_reverse_charge_applies_to_eu_businesses_of_another_member_state(country, tax_id, seller, reverse):
    assert taxes.is_reverse_charge(country, tax_id, seller) is reverse


def add_rate(session, country, percent, inclusive=False, name="VAT", active=True):
    rate = TaxRate(name=name, percent=Decimal(percent), country=country, inclusive=inclusive, active=active)
    session.add(rate)
    session.commit()
    return rate


def invoice_of(session, user):
    return session.scalars(select(Invoice).where(Invoice.user_id == user.id).order_by(Invoice.id)).first()


# (customer's country, tax ID, plan price, currency, the country's rate, inclusive) -> (net, tax, name, note)
RUN_CASES = [
    ("DE", None, 2900, "EUR", "19", False, (2900, 551, "VAT", "")),
    ("FI", None, 2900, "EUR", "25.5", False, (2900, 740, "VAT", "")),
    ("FI", None, 2900, "EUR", "25.5", True, (2311, 589, "VAT", "")),
    ("SE", None, 3, "EUR", "20", True, (2, 1, "VAT", "")),
    ("JP", None, 1235, "JPY", "10", False, (1235, 124, "VAT", "")),
    ("JP", None, 1000, "JPY", "8", True, (926, 74, "VAT", "")),
    ("US", None, 2900, "USD", None, False, (2900, 0, "", "")),  # no rate for the country: no tax
    ("DE", "DE136695976", 2900, "EUR", "19", False, (2900, 0, taxes.REVERSE_CHARGE_NAME, taxes.REVERSE_CHARGE_NOTE)),
    ("FI", "FI20774740", 2900, "EUR", "25.5", False, (2900, 740, "VAT", "")),  # the seller's own country
]


@pytest.mark.parametrize("country, tax_id, price, currency, percent, inclusive, expected", RUN_CASES)
def test_the_billing_run_taxes_each_line_by_the_same_rule(
    session, make_user, country, tax_id, price, currency, percent, inclusive, expected
):
    """The run's set-based SQL (PostgreSQL and SQLite) agrees with the Python rule, line by line."""
    settings = BillingSettings(seller_country="FI")
    if percent is not None:
        add_rate(session, country, percent, inclusive)
    add_rate(session, "NO", "25")  # another country's rate never applies
    plan = Plan(code="t", name="Tax", price=price, currency=currency, interval="month")
    session.add(plan)
    user = make_user(billing_country=country, tax_id=tax_id)
    subscribe(session, user, plan, utc(2024, 1, 31, 8), settings)  # the run's SQL issues the first invoice
    run_billing(session, utc(2024, 3, 1), settings, session.commit)
    session.commit()
    net, tax, name, note = expected
    for invoice in session.scalars(select(Invoice).where(Invoice.user_id == user.id)):
        [line] = invoice.lines
        assert (line.amount, line.unit_amount, line.quantity, line.tax_cents) == (net, net, 1, tax)
        assert line.tax_name == name and Decimal(line.tax_rate_percent) == Decimal(
            percent if percent and not note else 0
        )
        assert (invoice.subtotal_cents, invoice.tax_cents, invoice.total) == (net, tax, net + tax)
        assert invoice.tax_note == note
        if percent is not None and not note:
            assert (net, tax) == taxes.line_tax(price, Decimal(percent), inclusive)


def test_an_inactive_rate_does_not_apply(session, make_user, settings):
    add_rate(session, "DE", "19", active=False)
    user = make_user(billing_country="DE")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 31, 8), settings)
    session.commit()
    assert (invoice_of(session, user).tax_cents, invoice_of(session, user).total) == (0, 2900)


def test_a_proration_is_taxed_by_the_same_rule(session, make_user):
    settings = BillingSettings(seller_country="FI")
    add_rate(session, "FI", "25.5")
    user = make_user(billing_country="FI")
    sub = subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 31, 8), settings)
    session.commit()
    change, invoice = change_plan(session, sub, find_plan(session, "enterprise"), utc(2024, 2, 10, 8), settings)
    session.commit()
    [line] = invoice.lines
    assert (line.amount, line.tax_cents) == taxes.line_tax(change.amount, Decimal("25.5"), False)
    assert invoice.total == change.amount + line.tax_cents and line.tax_name == "VAT"
    assert invoice.number == "INV-000002"


def test_the_tax_summary_groups_lines_by_rate():
    lines = [
        InvoiceLine(amount=1000, tax_cents=190, tax_name="VAT", tax_rate_percent=Decimal("19.0000")),
        InvoiceLine(amount=500, tax_cents=95, tax_name="VAT", tax_rate_percent=Decimal("19")),
        InvoiceLine(amount=200, tax_cents=51, tax_name="VAT", tax_rate_percent=Decimal("25.5")),
        InvoiceLine(amount=300, tax_cents=0, tax_name="", tax_rate_percent=Decimal(0)),
    ]
    summary = taxes.tax_summary(lines)
    assert [(g.label, g.net, g.tax) for g in summary] == [("VAT 19 %", 1500, 285), ("VAT 25.5 %", 200, 51)]
