import datetime as dt

from sqlalchemy import select

from portal.billing import dunning
from portal.billing.daily import run_day
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, Notification, Subscription
from tests.conftest import utc

D = dt.date


def reminder_steps(session, invoice_id):
    return session.execute(
        select(Notification.kind, Notification.step)
        .where(Notification.invoice_id == invoice_id, Notification.kind != "invoice_issued")
        .order_by(Notification.id)
    ).all()


def first_invoice(session, make_user, settings, day=utc(2024, 1, 10, 9)):
    sub = subscribe(session, make_user(), find_plan(session, "pro"), day, settings)
    session.commit()
    return sub, session.scalar(select(Invoice).where(Invoice.subscription_id == sub.id))


def test_open_invoice_becomes_overdue_after_its_due_date(session, make_user, settings):
    _, inv = first_invoice(session, make_user, settings)
    assert inv.due_date == D(2024, 1, 24)
    assert dunning.mark_overdue(session, D(2024, 1, 24)) == 0
    assert dunning.mark_overdue(session, D(2024, 1, 25)) == 1
    session.refresh(inv)
    assert inv.status == "overdue"


def test_each_reminder_step_is_queued_once_by_daily_runs(session, make_user, settings):
    _, inv = first_invoice(session, make_user, settings)
    day = D(2024, 1, 10)
    while day <= D(2024, 2, 10):  # the run happens every day, twice on some days
        now = utc(day.year, day.month, day.day, 6)
        run_day(session, now, settings, session.commit)
        if day.day % 3 == 0:
            run_day(session, now, settings, session.commit)
        day += dt.timedelta(days=1)
    assert reminder_steps(session, inv.id) == [("reminder", -3), ("reminder", 0), ("overdue", 3), ("overdue", 7)]
    created = dict(
        session.execute(
            select(Notification.step, Notification.created_at).where(
                Notification.invoice_id == inv.id, Notification.kind != "invoice_issued"
            )
        ).all()
    )
    assert {s: c.date() for s, c in created.items()} == {
        -3: D(2024, 1, 21),
        0: D(2024, 1, 24),
        3: D(2024, 1, 27),
        7: D(2024, 1, 31),
    }
    issued = session.scalars(select(Notification).where(Notification.kind == "invoice_issued")).all()
    assert len(issued) == 2  # January's and February's invoice, one notice each


def test_a_missed_week_sends_only_the_latest_step(session, make_user, settings):
    _, inv = first_invoice(session, make_user, settings)
    run_day(session, utc(2024, 1, 28), settings, session.commit)
    assert reminder_steps(session, inv.id) == [("overdue", 3)]


def test_paid_and_void_invoices_get_no_reminders(session, make_user, settings):
    _, inv = first_invoice(session, make_user, settings)
    inv.status = "paid"
    session.commit()
    run_day(session, utc(2024, 1, 24), settings, session.commit)
    run_day(session, utc(2024, 1, 31), settings, session.commit)
    assert reminder_steps(session, inv.id) == []


def test_long_overdue_makes_the_subscription_past_due_and_settling_restores_it(session, make_user, settings):
    sub, inv = first_invoice(session, make_user, settings)
    run_day(session, utc(2024, 1, 30), settings, session.commit)  # overdue 6 days
    session.refresh(sub)
    assert sub.status == "active"
    run_day(session, utc(2024, 1, 31), settings, session.commit)  # overdue 7 days
    session.refresh(sub)
    assert sub.status == "past_due"
    inv = session.get(Invoice, inv.id)
    inv.status = "paid"
    assert dunning.settle(session, sub.id, D(2024, 2, 1), settings) is True
    session.refresh(sub)
    assert sub.status == "active"


def test_settle_keeps_past_due_while_another_invoice_is_long_overdue(session, make_user, settings):
    sub, inv = first_invoice(session, make_user, settings)
    run_day(session, utc(2024, 2, 10), settings, session.commit)  # February's invoice, due Feb 24
    run_day(session, utc(2024, 3, 5), settings, session.commit)
    assert session.get(Subscription, sub.id).status == "past_due"
    session.get(Invoice, inv.id).status = "paid"  # January paid, February still long overdue
    assert dunning.settle(session, sub.id, D(2024, 3, 5), settings) is False
    assert session.get(Subscription, sub.id).status == "past_due"
