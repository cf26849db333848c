"""Plan and price changes through the pages, the API and the console."""

from sqlalchemy import select

from portal.billing import pricing
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan
from portal.models import NOTE_PRICE_CHANGE, AuditEntry, Invoice, Notification, Plan, Subscription
from portal.tokens import issue
from tests.conftest import login, utc
from tests.portal.test_api import conforms


def test_pricing_offers_yearly_with_its_saving(client, session):
    html = client.get("/pricing").get_data(as_text=True)
    assert "$290.00</strong> / year" in html and "save $58.00" in html  # Pro: 12 x 29 - 290
    assert "Start with Pro yearly" in html and "/signup?plan=pro-yearly" in html


def test_monthly_to_yearly_preview_and_confirm_on_the_account_page(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 25, 12)
    hx = {"HX-Request": "true", "HX-Target": "change-preview"}
    preview = client.get("/account/change-plan?plan=pro-yearly", headers=hx).get_data(as_text=True)
    assert "starts today and runs to Jan 25, 2025" in preview and "$14.97" in preview and "$275.03" in preview
    assert client.post("/account/change-plan", data={"plan": "pro-yearly"}).location == "/account"
    session.expire_all()
    sub = session.scalar(select(Subscription))
    assert (sub.plan.code, sub.interval_months, sub.price) == ("pro-yearly", 12, 29000)
    invoice = session.scalars(select(Invoice).order_by(Invoice.id.desc())).first()
    assert [line.amount for line in invoice.lines] == [29000, -1497] and invoice.total == 27503
    page = client.get("/account").get_data(as_text=True)
    assert "$290.00 / year" in page and "Jan 25, 2025" in page


def test_the_account_page_and_the_api_show_an_announced_price(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    pricing.change_price(session, find_plan(session, "pro"), 3900, "existing", utc(2024, 1, 15), BillingSettings())
    session.commit()
    page = client.get("/account").get_data(as_text=True)
    assert "Your price changes to $39.00 / month on Mar 10, 2024" in page
    assert "$29.00 / month" in page  # what is paid today
    _, secret = issue(session, customer, "test", utc(2024, 1, 1))
    session.commit()
    shown = client.get("/api/subscription/", headers={"Authorization": f"Bearer {secret}"})
    assert shown.json["price"] == 2900 and shown.json["next_price"] == 2900
    assert shown.json["price_change"] == {"price": 3900, "on": "2024-03-10"}
    conforms(shown, "Subscription")


def test_the_api_previews_monthly_to_yearly(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 25, 12)
    _, secret = issue(session, customer, "test", utc(2024, 1, 1))
    session.commit()
    shown = client.get(
        "/api/subscription/preview-change/?plan=pro-yearly", headers={"Authorization": f"Bearer {secret}"}
    )
    assert shown.status_code == 200, shown.json
    assert (shown.json["kind"], shown.json["credit"], shown.json["amount"]) == ("interval_now", 1497, 27503)
    assert shown.json["new_period_end"] == "2025-01-25"
    conforms(shown, "PlanChange")


def test_staff_change_a_price_choosing_who_pays_it(client, session, make_user, customer, config):
    config["CLOCK"] = lambda: utc(2024, 1, 15, 12)
    staff = make_user(email="staff@example.com", is_staff=True)
    login(client, staff)
    plan = find_plan(session, "pro")
    form = client.get(f"/admin/plan/price/?id={plan.id}").get_data(as_text=True)
    assert "1 live subscription(s)" in form and "New subscribers only" in form
    # Refused: no choice, a negative price, the same price; nothing changes.
    for data, message in [
        ({"price": "3900"}, "Choose who pays the new price."),
        ({"price": "-5", "mode": "existing"}, "A price is a whole number"),
        ({"price": "2900", "mode": "existing"}, "already costs $29.00"),
    ]:
        answer = client.post(f"/admin/plan/price/?id={plan.id}", data=data, follow_redirects=True)
        assert answer.status_code == 200 and message in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(Plan, plan.id).price == 2900
    done = client.post(
        f"/admin/plan/price/?id={plan.id}", data={"price": "3900", "mode": "existing"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "1 subscriber(s) notified" in done and "Feb 14, 2024" in done
    session.expire_all()
    assert session.get(Plan, plan.id).price == 3900
    sub = session.scalar(select(Subscription))
    assert (sub.price, sub.pending_price, str(sub.pending_price_from)) == (2900, 3900, "2024-02-14")
    [note] = session.scalars(select(Notification).where(Notification.kind == NOTE_PRICE_CHANGE)).all()
    assert note.user_id == customer.id and "March 10, 2024" in note.subject
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "change_price")).all()
    assert entry.actor_id == staff.id
    # The plan's edit form no longer edits the price.
    edit = client.get(f"/admin/plan/edit/?id={plan.id}").get_data(as_text=True)
    assert 'name="price"' not in edit
    assert client.get("/admin/plan/price/?id=99999999999999999999").status_code == 404


def test_customers_pause_themselves_only_where_staff_allow_it(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    assert "Pause payments" not in client.get("/account").get_data(as_text=True)
    assert client.post("/account/pause").status_code == 404
    config["CUSTOMER_CAN_PAUSE"] = True  # restored by the fixture
    assert "Pause payments" in client.get("/account").get_data(as_text=True)
    hx = {"HX-Request": "true", "HX-Target": "subscription"}
    paused = client.post("/account/pause", headers=hx).get_data(as_text=True)
    assert "Payments are paused" in paused and "Resume payments" in paused and "Pause payments" not in paused
    session.expire_all()
    assert session.scalar(select(Subscription)).paused_at is not None
    again = client.post("/account/pause", follow_redirects=True).get_data(as_text=True)
    assert "Collection is already paused." in again
