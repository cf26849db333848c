"""Staff input the console must refuse with a form message (issue 12 leftovers C and D).

"Run billing now" as of a day outside a sane window (0001-01-01 made the overdue job
overflow), and plan codes and prices the product cannot carry (spaces, spreadsheet
formulas, non-ASCII; prices past a BIGINT, a DataError on PostgreSQL).
"""

from __future__ import annotations

import fakeredis
import pytest
from sqlalchemy import func, select

from portal.jobs import queues
from portal.models import AuditEntry, Plan


@pytest.fixture()
def queue(config, monkeypatch):
    config["REDIS_URL"] = ""
    monkeypatch.setattr(queues, "_embedded", fakeredis.FakeRedis())  # a queue no worker drains
    return queues.queue(queues.BILLING, queues.connection(""))


@pytest.mark.parametrize("day", ["0001-01-01", "2023-03-04", "2024-03-06", "9999-12-31"])
def test_run_billing_refuses_a_day_outside_the_last_year(client, staff, session, queue, day):
    response = client.post("/admin/jobs/run-billing", data={"as_of": day}, follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"Bill as of a day from 2023-03-05 to today (2024-03-05): {day} is outside that window." in page
    assert queue.get_jobs() == [] and session.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.parametrize("day", ["2023-03-05", "2024-03-05"])
def test_run_billing_accepts_the_edges_of_the_window(client, staff, session, queue, day):
    response = client.post("/admin/jobs/run-billing", data={"as_of": day}, follow_redirects=True)
    assert f"Billing as of {day} queued." in response.get_data(as_text=True)
    [job] = queue.get_jobs()
    assert job.args == (day,)


def test_run_billing_with_no_day_says_what_to_give(client, staff, session, queue):
    response = client.post("/admin/jobs/run-billing", data={"as_of": "not a day"}, follow_redirects=True)
    assert "Give the day to bill as of (YYYY-MM-DD)." in response.get_data(as_text=True)
    assert queue.get_jobs() == []


def new_plan(client, **fields):
    data = {
        "code": "team",
        "name": "Team",
        "price": "4900",
        "currency": "USD",
        "interval": "month",
        "trial_days": "0",
        "sort_order": "4",
        "active": "y",
        **fields,
    }
    return client.post("/admin/plan/new/", data=data)


CODE_MESSAGE = "A plan code is 1 to 32 lower-case letters (a-z), digits, &#39;-&#39; or &#39;_&#39;"


@pytest.mark.parametrize("code", ["ABC DEF", "=cmd", "trial-é", "Team", "team\n", "a" * 33, "te am", "+1", "@x"])
def test_plan_codes_are_lower_case_ascii(client, staff, session, code):
    response = new_plan(client, code=code)
    assert response.status_code == 200 and CODE_MESSAGE in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Plan).where(Plan.name == "Team")) == 0


@pytest.mark.parametrize("code", ["team", "pro-2024", "x_1", "a" * 32])
def test_good_plan_codes_are_accepted(client, staff, session, code):
    assert new_plan(client, code=code).status_code == 302
    assert session.scalar(select(Plan).where(Plan.code == code)).price == 4900


@pytest.mark.parametrize("price", [str(2**63), "99999999999999999999999999"])
def test_a_price_past_a_bigint_is_a_form_message(client, staff, session, price):
    response = new_plan(client, price=price)
    assert response.status_code == 200
    assert "A price can be at most 9,223,372,036,854,775,807 minor units." in response.get_data(as_text=True)
    assert session.scalar(select(Plan).where(Plan.code == "team")) is None


def test_the_largest_bigint_price_is_stored(client, staff, session):
    assert new_plan(client, price=str(2**63 - 1)).status_code == 302
    assert session.scalar(select(Plan).where(Plan.code == "team")).price == 2**63 - 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"sort_order": str(2**31)}, "The sort order must be a whole number"),
        ({"currency": "us$"}, "A currency is a three-letter code in capitals, e.g. USD."),
    ],
)
def test_other_plan_fields_past_their_columns_are_form_messages(client, staff, session, fields, message):
    response = new_plan(client, **fields)
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert session.scalar(select(Plan).where(Plan.code == "team")) is None


def test_editing_a_plan_checks_the_code_too(client, staff, session):
    plan = session.scalar(select(Plan).where(Plan.code == "pro"))
    data = {
        "code": "=HYPERLINK()",
        "name": plan.name,
        "price": str(plan.price),
        "currency": plan.currency,
        "interval": plan.interval,
        "trial_days": str(plan.trial_days),
        "sort_order": str(plan.sort_order),
        "active": "y",
    }
    response = client.post(f"/admin/plan/edit/?id={plan.id}", data=data)
    assert response.status_code == 200 and CODE_MESSAGE in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Plan, plan.id).code == "pro"
