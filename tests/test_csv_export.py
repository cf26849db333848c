"""Issue 12, item 7: a CSV export never hands a spreadsheet a formula to run."""

import csv
import io
import json

import pytest

from portal.billing.exports import spreadsheet_safe
from portal.billing.subscriptions import find_plan, subscribe
from tests.conftest import utc


@pytest.mark.parametrize("email", ["=1+1@example.com", "+cmd@example.com", "-2+3@example.com", "@sum@example.com"])
def test_invoice_export_neutralises_formula_cells(runner, session, make_user, settings, email):
    plan = find_plan(session, "pro")
    plan.code = "=hyperlink"
    subscribe(session, make_user(email=email), plan, utc(2024, 1, 10), settings)
    session.commit()
    output = runner.invoke(args=["invoices", "export"]).output
    row = next(csv.DictReader(io.StringIO(output)))
    assert row["email"] == "'" + email and row["plan"] == "'=hyperlink"
    assert row["total"] == "2900" and row["period_start"] == "2024-01-10"
    # JSON is data, not a spreadsheet: kept as it is.
    data = json.loads(runner.invoke(args=["invoices", "export", "--format", "json"]).output)
    assert data[0]["email"] == email


@pytest.mark.parametrize(
    "value, safe",
    [
        ("=A1", "'=A1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("ada@example.com", "ada@example.com"),
        ("", ""),
        (None, None),
        (-5, -5),
        ("INV-000001", "INV-000001"),
    ],
)
def test_spreadsheet_safe(value, safe):
    assert spreadsheet_safe(value) == safe
