import datetime as dt

import pytest
from sqlalchemy import literal, select

from portal.billing.periods import add_months, period_bounds, periods_ended_by
from portal.billing.sql import add_months_sql

D = dt.date

ADD_MONTHS = [
    # anchor, months, expected
    (D(2024, 1, 31), 1, D(2024, 2, 29)),  # leap year February
    (D(2023, 1, 31), 1, D(2023, 2, 28)),  # common year February
    (D(2024, 1, 31), 2, D(2024, 3, 31)),  # from the anchor: back to the 31st, no drift
    (D(2024, 1, 31), 3, D(2024, 4, 30)),
    (D(2024, 3, 31), 1, D(2024, 4, 30)),
    (D(2024, 8, 31), 6, D(2025, 2, 28)),
    (D(2024, 12, 15), 1, D(2025, 1, 15)),  # December -> January
    (D(2024, 12, 31), 1, D(2025, 1, 31)),
    (D(2024, 11, 30), 3, D(2025, 2, 28)),
    (D(2024, 2, 29), 12, D(2025, 2, 28)),  # yearly from a leap day
    (D(2024, 2, 29), 48, D(2028, 2, 29)),  # ... and back to the 29th four years on
    (D(2024, 5, 15), 0, D(2024, 5, 15)),
]


@pytest.mark.parametrize("anchor, months, expected", ADD_MONTHS)
def test_add_months_clamps_to_month_end(anchor, months, expected):
    assert add_months(anchor, months) == expected


@pytest.mark.parametrize("anchor, months, expected", ADD_MONTHS)
def test_sql_period_rule_agrees_with_python(session, anchor, months, expected):
    result = session.scalar(select(add_months_sql(literal(anchor), literal(months))))
    assert dt.date.fromisoformat(str(result)) == expected


@pytest.mark.parametrize(
    "anchor, index, interval, expected",
    [
        (D(2024, 1, 31), 0, 1, (D(2024, 1, 31), D(2024, 2, 29))),
        (D(2024, 1, 31), 1, 1, (D(2024, 2, 29), D(2024, 3, 31))),
        (D(2024, 1, 31), 2, 1, (D(2024, 3, 31), D(2024, 4, 30))),
        (D(2024, 1, 31), 11, 1, (D(2024, 12, 31), D(2025, 1, 31))),
        (D(2024, 2, 29), 0, 12, (D(2024, 2, 29), D(2025, 2, 28))),
        (D(2024, 2, 29), 3, 12, (D(2027, 2, 28), D(2028, 2, 29))),
    ],
)
def test_period_bounds(anchor, index, interval, expected):
    assert period_bounds(anchor, index, interval) == expected


@pytest.mark.parametrize(
    "day, expected",
    [(D(2024, 1, 30), 0), (D(2024, 2, 28), 0), (D(2024, 2, 29), 1), (D(2024, 4, 29), 2), (D(2024, 4, 30), 3)],
)
def test_periods_ended_by(day, expected):
    assert periods_ended_by(D(2024, 1, 31), 1, day) == expected
