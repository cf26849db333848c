"""Monthly <-> yearly plan changes, as tables of (situation, action, expected lines and totals).

Monthly to yearly starts the yearly period today, crediting the unused part of the paid
month on the new invoice (never below zero); yearly to monthly waits for the end of the
paid year unless staff move it at once. Paused collection: no invoices while paused.
"""

import datetime as dt

import pytest
from sqlalchemy import select

from portal.billing.errors import BillingError
from portal.billing.invoicing import run_billing
from portal.billing.subscriptions import change_plan, find_plan, pause, preview_change, subscribe, unpause
from portal.models import Invoice, Plan
from tests.conftest import utc

D = dt.date


def invoices(session, sub):
    return session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id).order_by(Invoice.id)).all()


def lines(invoice):
    return [line.amount for line in invoice.lines]


# (from plan, subscribed on, to plan, changed on, credit, expected lines, expected total)
MONTHLY_TO_YEARLY = [
    ("pro", D(2024, 1, 10), "pro-yearly", D(2024, 1, 10), 2900, [29000, -2900], 26100),  # the whole month unused
    ("pro", D(2024, 1, 10), "pro-yearly", D(2024, 1, 25), 1497, [29000, -1497], 27503),  # 16 of 31 days
    ("pro", D(2024, 1, 10), "pro-yearly", D(2024, 2, 9), 94, [29000, -94], 28906),  # 1 of 31 days
    ("basic", D(2024, 1, 10), "enterprise-yearly", D(2024, 1, 25), 465, [99000, -465], 98535),  # and up a tier
    ("enterprise", D(2024, 1, 10), "tiny-yearly", D(2024, 1, 10), 100, [100, -100], 0),  # credit capped: never < 0
]


@pytest.mark.parametrize("old, start, new, day, credit, expected_lines, total", MONTHLY_TO_YEARLY)
def test_monthly_to_yearly_starts_the_year_now_with_the_unused_month_credited(
    session, make_user, settings, old, start, new, day, credit, expected_lines, total
):
    session.add(Plan(code="tiny-yearly", name="Tiny", price=100, currency="USD", interval="year"))
    sub = subscribe(session, make_user(), find_plan(session, old), utc(start.year, start.month, start.day, 9), settings)
    preview = preview_change(sub, find_plan(session, new), day)
    assert (preview.kind, preview.credit, preview.amount) == ("interval_now", credit, total)

    change, invoice = change_plan(
        session, sub, find_plan(session, new), utc(day.year, day.month, day.day, 10), settings
    )

    assert change == preview
    assert invoice is not None and lines(invoice) == expected_lines and invoice.total == total
    assert invoice.total >= 0 and invoice.number
    year_end = D(day.year + 1, day.month, day.day)
    assert (invoice.period_start, invoice.period_end) == (day, year_end)
    assert (sub.plan.code, sub.interval_months, sub.price) == (new, 12, find_plan(session, new).price)
    assert (sub.current_period_start, sub.current_period_end, sub.next_period_start) == (day, year_end, year_end)
    # Nothing more until the year is over; then the next year at the yearly price.
    run_billing(session, utc(day.year, 12, 31), settings, session.commit)
    assert len(invoices(session, sub)) == 2
    run_billing(session, utc(year_end.year, year_end.month, year_end.day, 1), settings, session.commit)
    last = invoices(session, sub)[-1]
    assert (last.period_start, last.total, lines(last)) == (year_end, sub.price, [sub.price])


# (changed on, staff at once, kind, invoice now: (lines, total) or None, monthly billing from)
YEARLY_TO_MONTHLY = [
    (D(2024, 6, 1), False, "interval_later", None, D(2025, 1, 10)),
    (D(2025, 1, 9), False, "interval_later", None, D(2025, 1, 10)),
    # Staff move it at once: the month starts today; the unused year pays for it (capped at its price).
    (D(2024, 6, 1), True, "interval_now", ([2900, -2900], 0), D(2024, 7, 1)),
]


@pytest.mark.parametrize("day, at_once, kind, now_invoice, monthly_from", YEARLY_TO_MONTHLY)
def test_yearly_to_monthly_waits_for_the_paid_year_unless_staff_say_now(
    session, make_user, settings, day, at_once, kind, now_invoice, monthly_from
):
    sub = subscribe(session, make_user(), find_plan(session, "pro-yearly"), utc(2024, 1, 10, 9), settings)
    monthly = find_plan(session, "pro")
    change, invoice = change_plan(
        session, sub, monthly, utc(day.year, day.month, day.day, 10), settings, at_once=at_once, actor_id=None
    )
    assert change.kind == kind
    if now_invoice is None:
        assert invoice is None and sub.pending_plan_id == monthly.id and sub.plan.code == "pro-yearly"
        assert change.effective == D(2025, 1, 10)
    else:
        assert invoice is not None and (lines(invoice), invoice.total) == now_invoice
    # The runs up to and past the switch: monthly invoices at the monthly price from `monthly_from`.
    for month in range(1, 4):
        when = D(
            monthly_from.year + (monthly_from.month + month - 2) // 12, (monthly_from.month + month - 2) % 12 + 1, 10
        )
        run_billing(session, utc(when.year, when.month, when.day, 1), settings, session.commit)
    run_billing(session, utc(monthly_from.year, monthly_from.month, monthly_from.day, 1), settings, session.commit)
    session.refresh(sub)
    after = [i for i in invoices(session, sub) if i.period_start >= monthly_from]
    assert after and after[0].period_start == monthly_from and after[0].total == 2900
    assert all(i.total == 2900 and (i.period_end - i.period_start).days <= 31 for i in after)
    assert (sub.plan.code, sub.interval_months, sub.price, sub.pending_plan_id) == ("pro", 1, 2900, None)


def test_a_trial_switches_interval_and_bills_the_year_when_it_ends(session, make_user, settings):
    find_plan(session, "pro").trial_days = 14
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    change, invoice = change_plan(session, sub, find_plan(session, "pro-yearly"), utc(2024, 1, 12), settings)
    assert (change.kind, invoice, sub.interval_months, sub.anchor) == ("switch", None, 12, D(2024, 1, 24))
    run_billing(session, utc(2024, 1, 24, 1), settings, session.commit)
    [first] = invoices(session, sub)
    assert (first.period_start, first.period_end, first.total) == (D(2024, 1, 24), D(2025, 1, 24), 29000)


# While paused: (to plan, expected kind or refusal code, invoices issued now)
PAUSED = [
    ("pro-yearly", "paused", 0),  # refused: a new year would be an invoice while paused
    ("enterprise", "switch", 0),  # an upgrade charges nothing while paused; billed at its price on resume
    ("basic", "switch", 0),  # cheaper from now: no credit, as the paused period may not be billed
]


@pytest.mark.parametrize("to, expected, issued", PAUSED)
def test_plan_changes_while_paused_issue_no_invoice(session, make_user, settings, to, expected, issued):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    pause(session, sub, utc(2024, 1, 15))
    if expected == "paused":
        with pytest.raises(BillingError) as err:
            change_plan(session, sub, find_plan(session, to), utc(2024, 1, 20), settings)
        assert err.value.code == "paused"
        return
    change, invoice = change_plan(session, sub, find_plan(session, to), utc(2024, 1, 20), settings)
    assert change.kind == expected and invoice is None and len(invoices(session, sub)) == 1
    run_billing(session, utc(2024, 3, 12), settings, session.commit)
    assert len(invoices(session, sub)) == 1  # none while paused
    unpause(session, sub, utc(2024, 3, 15))
    run_billing(session, utc(2024, 3, 15, 1), settings, session.commit)
    last = invoices(session, sub)[-1]
    assert (last.period_start, last.total) == (D(2024, 3, 10), find_plan(session, to).price)


def test_the_same_change_twice_issues_one_invoice(session, make_user, settings):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    change_plan(session, sub, find_plan(session, "pro-yearly"), utc(2024, 1, 20), settings)
    with pytest.raises(BillingError) as err:
        change_plan(session, sub, find_plan(session, "pro-yearly"), utc(2024, 1, 20), settings)
    assert err.value.code == "same_plan" and len(invoices(session, sub)) == 2
