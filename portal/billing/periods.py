"""Calendar arithmetic for billing periods.

Period k of a subscription starts at anchor + k * interval, always computed from
the anchor, with the day clamped to the month's end: an anchor of Jan 31 gives
Feb 28 (29 in leap years), then Mar 31 -- never a drift to the 28th.
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta

INTERVAL_MONTHS = {"month": 1, "year": 12}


def add_months(anchor: dt.date, months: int) -> dt.date:
    """anchor + months, the day clamped to the end of the target month."""
    day: dt.date = anchor + relativedelta(months=months)
    return day


def period_start(anchor: dt.date, index: int, interval_months: int) -> dt.date:
    return add_months(anchor, index * interval_months)


def period_bounds(anchor: dt.date, index: int, interval_months: int) -> tuple[dt.date, dt.date]:
    """(start, end) of period `index`; the end is the next period's start (exclusive)."""
    return (
        period_start(anchor, index, interval_months),
        period_start(anchor, index + 1, interval_months),
    )


def periods_ended_by(anchor: dt.date, interval_months: int, day: dt.date) -> int:
    """How many whole periods from the anchor have ended on or before `day`."""
    count = 0
    while period_start(anchor, count + 1, interval_months) <= day:
        count += 1
    return count


def days_between(start: dt.date, end: dt.date) -> int:
    return (end - start).days
