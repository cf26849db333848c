import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from portal.billing import reports
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import AuditEntry, Invoice, Notification, Payment, Plan, Subscription, User
from tests.conftest import utc

VIEWS = [
    "/admin/",
    "/admin/user/",
    "/admin/plan/",
    "/admin/subscription/",
    "/admin/invoice/",
    "/admin/payment/",
    "/admin/notification/",
    "/admin/webhookevent/",
    "/admin/auditentry/",
    "/admin/jobs/",
]


@pytest.fixture()
def book(session, make_user, settings):
    """A known business: Ada on Pro (one invoice paid, one overdue), Bob on Enterprise."""
    ada, bob = make_user(email="ada@example.com"), make_user(email="bob@example.com")
    subscribe(session, ada, find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    subscribe(session, bob, find_plan(session, "enterprise"), utc(2024, 2, 20, 9), settings)
    from portal.billing.daily import run_day

    run_day(session, utc(2024, 2, 10, 9), settings, session.commit)  # Ada's 2nd invoice, due Feb 24
    run_day(session, utc(2024, 3, 5, 9), settings, session.commit)  # Ada's Jan + Feb overdue, Bob's open
    jan = session.scalar(select(Invoice).where(Invoice.user_id == ada.id).order_by(Invoice.id))
    jan.status, jan.paid_at = "paid", utc(2024, 1, 15)
    session.add(
        Payment(
            invoice_id=jan.id,
            provider="stripe",
            provider_ref="cs_jan",
            amount=2900,
            currency="USD",
            status="succeeded",
            created_at=utc(2024, 1, 15),
        )
    )
    session.commit()
    return ada, bob


def test_anonymous_visitors_get_the_login_page(client, session):
    for path in VIEWS:
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login?next=")


def test_customers_get_403(client, customer):
    for path in VIEWS:
        assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", VIEWS)
def test_staff_see_every_view(client, staff, book, path):
    assert client.get(path).status_code == 200


def test_staff_log_in_on_the_same_page_and_land_in_the_console(client, session, make_user):
    make_user(email="boss@example.com", password="right password", is_staff=True)
    response = client.post("/login", data={"email": "boss@example.com", "password": "right password"})
    assert response.location == "/admin/"


def test_lists_filter_and_search(client, staff, book):
    overdue = client.get("/admin/invoice/?flt0_status_equals=overdue")
    html = overdue.get_data(as_text=True)
    assert "INV-000003" in html and "INV-000001" not in html
    by_number = client.get("/admin/invoice/?search=INV-000002").get_data(as_text=True)
    assert "INV-000002" in by_number and "INV-000003" not in by_number
    by_email = client.get("/admin/invoice/?search=bob@").get_data(as_text=True)
    assert "bob@example.com" in by_email and "ada@example.com" not in by_email
    users = client.get("/admin/user/?search=ada").get_data(as_text=True)
    assert "ada@example.com" in users and "bob@example.com" not in users and "scrypt" not in users


def test_mark_paid_with_a_note_records_one_manual_payment(client, staff, book, session):
    response = client.post("/admin/invoice/mark-paid/?id=3", data={"note": "Bank transfer ref 8812"})
    assert response.status_code == 302
    invoice = session.get(Invoice, 3)
    [payment] = invoice.payments
    assert invoice.status == "paid" and payment.provider == "manual" and payment.note == "Bank transfer ref 8812"
    assert payment.recorded_by_id == staff.id
    again = client.post("/admin/invoice/mark-paid/?id=3", data={"note": "again"})
    assert again.status_code == 302 and len(session.get(Invoice, 3).payments) == 1
    assert "Invoice INV-000003 is already paid (on " in client.get(again.location).get_data(as_text=True)
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "mark_paid")).all()
    assert (entry.actor_id, entry.object_type, entry.object_id) == (staff.id, "Invoice", 3)
    assert "Bank transfer ref 8812" in entry.detail
    assert "mark_paid" in client.get("/admin/auditentry/").get_data(as_text=True)


def test_void_and_remind_actions(client, staff, book, session):
    client.post("/admin/invoice/action/", data={"action": "remind", "rowid": ["3"]})
    reminders = session.scalars(
        select(Notification).where(Notification.invoice_id == 3, Notification.kind == "reminder")
    ).all()
    assert len(reminders) == 1
    client.post("/admin/invoice/action/", data={"action": "void", "rowid": ["3", "1"]})
    session.expire_all()
    assert session.get(Invoice, 3).status == "void" and session.get(Invoice, 1).status == "paid"  # paid stays
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["send_reminder", "void"]


def test_subscription_actions(client, staff, book, session):
    ada_sub, bob_sub = session.scalars(select(Subscription).order_by(Subscription.id)).all()
    client.post("/admin/subscription/action/", data={"action": "cancel_at_period_end", "rowid": [str(ada_sub.id)]})
    client.post("/admin/subscription/action/", data={"action": "cancel_now", "rowid": [str(bob_sub.id)]})
    session.expire_all()
    assert session.get(Subscription, ada_sub.id).cancel_at_period_end
    assert session.get(Subscription, bob_sub.id).status == "canceled"
    client.post(f"/admin/subscription/change-plan/?id={ada_sub.id}", data={"plan": "basic"})
    session.expire_all()
    changed = session.get(Subscription, ada_sub.id)
    assert changed.plan.code == "basic" and changed.pending_plan_id is None  # a downgrade applies now
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 3


def test_one_refused_subscription_does_not_undo_the_others(client, staff, book, session):
    ada_sub, bob_sub = session.scalars(select(Subscription).order_by(Subscription.id)).all()
    client.post("/admin/subscription/action/", data={"action": "cancel_at_period_end", "rowid": [str(ada_sub.id)]})
    response = client.post(
        "/admin/subscription/action/",
        data={"action": "cancel_at_period_end", "rowid": [str(ada_sub.id), str(bob_sub.id)]},
    )
    shown = client.get(response.location).get_data(as_text=True)
    assert f"#{ada_sub.id}: This subscription is already set to cancel." in shown
    assert "Cancel at period end: 1 subscription(s)." in shown
    session.expire_all()
    assert session.get(Subscription, bob_sub.id).cancel_at_period_end
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.object_id, e.actor_id) for e in entries] == [
        ("cancel_at_period_end", ada_sub.id, staff.id),
        ("cancel_at_period_end", bob_sub.id, staff.id),
    ]


def test_a_refused_plan_change_says_why_and_records_nothing(client, staff, book, session):
    ada_sub = session.scalars(select(Subscription).order_by(Subscription.id)).first()
    response = client.post(f"/admin/subscription/change-plan/?id={ada_sub.id}", data={"plan": "pro"})
    assert response.status_code == 200 and "You are already on the Pro plan." in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    upgrade = client.post(f"/admin/subscription/change-plan/?id={ada_sub.id}", data={"plan": "enterprise"})
    assert upgrade.status_code == 302
    [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.actor_id) == ("change_plan", staff.id)
    assert re.fullmatch(r"to enterprise \(upgrade, invoice INV-\d{6}\)", entry.detail)


def test_editing_a_plan_saves_its_audit_entry(client, staff, session):
    plan = session.scalar(select(Plan).where(Plan.code == "pro"))
    data = {
        "code": "pro",
        "name": "Pro 2024",
        "price": "3900",  # ignored: the edit form has no price (the price-change page sets it)
        "currency": plan.currency,
        "interval": plan.interval,
        "trial_days": str(plan.trial_days),
        "sort_order": str(plan.sort_order),
        "active": "y",
    }
    assert client.post(f"/admin/plan/edit/?id={plan.id}", data=data).status_code == 302
    session.expire_all()
    [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.object_type, entry.object_id, entry.actor_id) == ("edit", "Plan", plan.id, staff.id)
    assert "name='Pro 2024'" in entry.detail and "price" not in entry.detail
    assert session.get(Plan, plan.id).price == 2900


def test_the_console_edits_users_but_does_not_create_them(client, staff, session, make_user):
    """Accounts come from sign-up, the import or create-staff (portal/users.py); an edited
    address is valid and canonical, as sign-up stores it."""
    ada = make_user(email="ada@example.com")
    assert "/admin/user/new/" not in client.get("/admin/user/").get_data(as_text=True)
    assert client.get("/admin/user/new/").status_code == 302  # back to the list
    refused = client.post(f"/admin/user/edit/?id={ada.id}", data={"email": "not an email", "name": "Ada"})
    assert refused.status_code == 200 and "An email address must have an @-sign." in refused.get_data(as_text=True)
    saved = client.post(f"/admin/user/edit/?id={ada.id}", data={"email": " Ada.L@Example.COM ", "name": "Ada"})
    assert saved.status_code == 302
    session.expire_all()
    assert session.get(User, ada.id).email == "ada.l@example.com"


def status_cells(html):
    return set(re.findall(r'<td class="col-status">\s*([^<]*?)\s*</td>', html))


def test_the_console_shows_status_labels(client, staff, book, session):
    """The labels customers read, in the lists and in the status filters (values stay in the URL)."""
    assert status_cells(client.get("/admin/invoice/").get_data(as_text=True)) == {"Open", "Overdue", "Paid"}
    bob_sub = session.scalars(select(Subscription).order_by(Subscription.id)).all()[1]
    bob_sub.status = "trialing"  # Ada's is past due (the book's Jan invoice is long overdue)
    session.commit()
    subscriptions = client.get("/admin/subscription/").get_data(as_text=True)
    assert status_cells(subscriptions) == {"Past due", "Trial"}
    assert (
        '"arg": "status_equals", "index": 2, "operation": "equals", "options": [["trialing", "Trial"], '
        '["active", "Active"], ["past_due", "Past due"], ["canceled", "Canceled"]]' in subscriptions
    )
    assert status_cells(client.get("/admin/payment/").get_data(as_text=True)) == {"Succeeded"}


def test_plans_create_and_refuse_a_negative_price(client, staff, session):
    bad = client.post(
        "/admin/plan/new/",
        data={
            "code": "team",
            "name": "Team",
            "price": "-5",
            "currency": "USD",
            "interval": "month",
            "trial_days": "0",
            "sort_order": "4",
        },
    )
    assert "A price cannot be negative." in bad.get_data(as_text=True)
    assert session.scalar(select(Plan).where(Plan.code == "team")) is None
    client.post(
        "/admin/plan/new/",
        data={
            "code": "team",
            "name": "Team",
            "price": "4900",
            "currency": "USD",
            "interval": "month",
            "trial_days": "14",
            "sort_order": "4",
            "active": "y",
        },
    )
    assert session.scalar(select(Plan).where(Plan.code == "team")).price == 4900
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "create")).object_type == "Plan"


def test_run_billing_now_from_the_console(client, staff, book, session, config, monkeypatch):
    import fakeredis

    from portal.jobs import queues

    config["REDIS_URL"] = ""
    monkeypatch.setattr(queues, "_embedded", fakeredis.FakeRedis())  # a queue no worker drains
    response = client.post("/admin/jobs/run-billing", data={"as_of": "2024-03-01"})
    assert response.status_code == 302
    [job] = queues.queue(queues.BILLING, queues.connection("")).get_jobs()
    assert job.func_name == "portal.jobs.tasks.daily_billing" and job.args == ("2024-03-01",)
    assert session.scalar(select(AuditEntry)).detail == "as of 2024-03-01"


def test_dashboard_figures_for_a_known_book(client, staff, book, session):
    mrr = reports.mrr_by_plan(session)
    assert {(m["plan"], m["subscribers"], m["mrr"]) for m in mrr} == {("enterprise", 1, 9900), ("pro", 1, 2900)}
    assert reports.receivables(session) == {"USD": {"open": 9900, "overdue": 2900}}
    revenue = reports.revenue_by_month(session, dt.date(2024, 3, 5))
    assert len(revenue) == 12 and revenue[-1]["month"] == dt.date(2024, 3, 1)
    assert {r["month"]: r["amounts"]["USD"] for r in revenue if r["amounts"]["USD"]} == {dt.date(2024, 1, 1): 2900}
    html = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="mrr-USD">\$128\.00<', html)
    assert re.search(r'id="overdue-USD">\$29\.00<', html) and re.search(r'id="open-USD">\$99\.00<', html)
    assert "January 2024" in html
    # Marking the overdue invoice paid moves the totals.
    client.post("/admin/invoice/mark-paid/?id=3", data={"note": "wire"})
    html = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="overdue-USD">\$0\.00<', html) and "March 2024" in html


def test_console_forms_need_the_csrf_token(client, staff, book, session, config):
    config["WTF_CSRF_ENABLED"] = True
    refused = client.post("/admin/invoice/mark-paid/?id=3", data={"note": "no token"})
    assert refused.status_code == 400
    page = client.get("/admin/invoice/mark-paid/?id=3").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    accepted = client.post("/admin/invoice/mark-paid/?id=3", data={"note": "wire", "csrf_token": token})
    assert accepted.status_code == 302 and session.get(Invoice, 3).status == "paid"


def test_every_console_page_has_log_out_and_the_way_back_to_the_portal(client, staff, book, path="/admin/invoice/"):
    for page in VIEWS:
        html = client.get(page).get_data(as_text=True)
        assert 'action="/logout"' in html and ">Log out</button>" in html, page
        assert ">Customer portal</a>" in html and "staff@example.com" in html, page
    # One heading per page: not "Dashboard" above "Business at a glance", nor "Jobs" twice.
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "Business at a glance" in dashboard and not re.search(r"<h4[^>]*>\s*(<[^>]+>\s*)*Dashboard", dashboard)
    jobs = client.get("/admin/jobs/").get_data(as_text=True)
    assert len(re.findall(r"<h[14][^>]*>\s*(<[^>]+>\s*)*Jobs", jobs)) == 1


def test_invoice_details_show_the_number_and_readable_times(client, staff, book, session):
    paid = session.scalar(select(Invoice).where(Invoice.status == "paid"))
    html = client.get(f"/admin/invoice/details/?id={paid.id}").get_data(as_text=True)
    assert paid.number in html
    assert "Jan 15, 2024 00:00 UTC" in html  # paid_at, as people read it
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", html)  # no raw timestamps
    listing = client.get("/admin/invoice/").get_data(as_text=True)
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", listing)
    # Icon-only row links say what they do, and to which row, to a screen reader.
    assert f'aria-label="View Record {paid.number}"' in listing
    for view in VIEWS[1:-1]:
        names = re.findall(r'aria-label="(View Record[^"]*)"', client.get(view).get_data(as_text=True))
        assert len(set(names)) == len(names) and "object at" not in " ".join(names), (view, names)


def test_archiving_plans_from_the_console_goes_through_the_core(client, staff, session):
    pro = session.scalar(select(Plan).where(Plan.code == "pro"))
    response = client.post("/admin/plan/action/", data={"action": "archive", "rowid": [str(pro.id)]})
    assert response.status_code == 302
    assert "Archived 1 plan(s)." in client.get(response.location).get_data(as_text=True)
    session.expire_all()
    assert session.get(Plan, pro.id).active is False
    [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.object_id, entry.actor_id) == ("archive", pro.id, staff.id)


def test_staff_may_create_a_zero_percent_tax_rate(client, staff, session):
    """A zero rate (a zero-rated country, an exempt service) is a rate like any other: 0 is
    an answer, not a missing one."""
    from decimal import Decimal

    from portal.models import TaxRate

    answer = client.post(
        "/admin/taxrate/new/",
        data={"name": "VAT", "percent": "0", "country": "AE", "active": "y"},
    )
    assert "Give the rate in percent" not in answer.get_data(as_text=True)
    rate = session.scalar(select(TaxRate).where(TaxRate.country == "AE"))
    assert rate is not None and rate.percent == Decimal(0)
    refused = client.post("/admin/taxrate/new/", data={"name": "VAT", "percent": "", "country": "BH", "active": "y"})
    assert "Give the rate in percent" in refused.get_data(as_text=True)
    assert session.scalar(select(TaxRate).where(TaxRate.country == "BH")) is None
