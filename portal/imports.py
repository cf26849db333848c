"""Import subscriptions that began elsewhere from a CSV file: all rows or none."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from typing import IO

from .billing.errors import BillingError
from .billing.subscriptions import find_plan, start_imported
from .models import DbSession
from .users import ensure_customer

REQUIRED = ("email", "plan", "start_date")


@dataclass
class ImportReport:
    created_users: int = 0
    subscriptions: int = 0
    errors: list[str] = field(default_factory=list)


def _date(raw: str, column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{column} {raw!r} is not a date (YYYY-MM-DD)") from None


def import_subscriptions(session: DbSession, stream: IO[str], now: dt.datetime) -> ImportReport:
    """Create users and subscriptions from `stream`; on any bad row, write nothing.

    The caller commits when report.errors is empty and rolls back otherwise.
    """
    report = ImportReport()
    reader = csv.DictReader(stream)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        report.errors.append(f"line 1: missing column(s): {', '.join(missing)}")
        return report
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            user, created = ensure_customer(session, row["email"] or "", now)
            if user.email in seen:
                raise ValueError(f"{user.email} already appears on line {seen[user.email]}")
            seen[user.email] = line
            plan = find_plan(session, row["plan"] or "")
            start = _date(row["start_date"] or "", "start_date")
            paid_through = None
            if (row.get("paid_through") or "").strip():
                paid_through = _date(row["paid_through"], "paid_through")
                if paid_through < start:
                    raise ValueError("paid_through is before start_date")
            if start > now.date():
                raise ValueError("start_date is in the future")
            with session.begin_nested():
                start_imported(session, user, plan, start, paid_through, now)
            report.subscriptions += 1
            report.created_users += created
        except (ValueError, BillingError) as exc:
            report.errors.append(f"line {line}: {getattr(exc, 'message', exc)}")
    return report
