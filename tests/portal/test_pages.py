import pytest
from sqlalchemy import select

from portal.billing.invoicing import run_billing
from portal.models import Invoice, Notification, Subscription
from tests.conftest import login, utc

PAGES = ["/account", "/invoices", "/invoices/1", "/notifications", "/tokens", "/password",
         "/account/change-plan?plan=enterprise"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_for_a_customer(client, customer, path, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    response = client.get(path)
    assert response.status_code == 200
    assert "ada@example.com" in response.get_data(as_text=True) or path != "/account"


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, session, path):
    response = client.get(path)
    assert response.status_code == 302 and response.location.startswith("/login?next=")


def test_pricing_shows_the_plans_from_the_database(client, session):
    html = client.get("/pricing").get_data(as_text=True)
    for name, price in [("Basic", "$9.00"), ("Pro", "$29.00"), ("Enterprise", "$99.00")]:
        assert name in html and price in html


def test_subscribe_from_the_pricing_page(client, make_user, session):
    login(client, make_user())
    response = client.post("/subscribe", data={"plan": "basic"})
    assert response.status_code == 303 and response.location == "/account"
    assert "Basic" in client.get("/account").get_data(as_text=True)
    again = client.post("/subscribe", data={"plan": "pro"}, follow_redirects=True)
    assert "You already have a subscription" in again.get_data(as_text=True)
    unknown = client.post("/subscribe", data={"plan": "gold"}, follow_redirects=True)
    assert "Unknown plan" in unknown.get_data(as_text=True)


def test_account_shows_status_period_and_next_invoice(client, customer, config):
    html = client.get("/account").get_data(as_text=True)
    assert "Active" in html and "Jan 10, 2024 – Feb 10, 2024" in html
    assert "Feb 10, 2024 · $29.00" in html


def test_htmx_gets_the_partial_and_a_full_request_the_page(client, customer):
    full = client.get("/account")
    part = client.get("/account", headers={"HX-Request": "true"})
    assert "<html" in full.get_data(as_text=True)
    assert part.get_data(as_text=True).lstrip().startswith('<section class="card" id="subscription">')
    assert "HX-Request" in full.headers["Vary"] and "HX-Request" in part.headers["Vary"]
    listing = client.get("/invoices?status=open", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert listing.lstrip().startswith('<div id="invoice-list">') and "INV-000001" in listing


def test_cancel_and_resume_in_place(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    hx = {"HX-Request": "true"}
    canceled = client.post("/account/cancel", headers=hx)
    html = canceled.get_data(as_text=True)
    assert canceled.status_code == 200 and "Cancels on Feb 10, 2024" in html and "Resume subscription" in html
    assert session.scalar(select(Subscription)).cancel_at_period_end
    resumed = client.post("/account/resume", headers=hx).get_data(as_text=True)
    assert "Your subscription will continue." in resumed and "Cancel at period end" in resumed
    session.expire_all()
    assert not session.scalar(select(Subscription)).cancel_at_period_end


def test_cancel_without_javascript_redirects(client, customer, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    response = client.post("/account/cancel")
    assert response.status_code == 303 and response.location == "/account"


def test_plan_change_shows_the_prorated_amount_before_confirming(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 25)
    preview = client.get("/account/change-plan?plan=enterprise", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "$36.13" in preview and "16 days left" in preview  # 7000 * 16/31
    assert session.scalar(select(Subscription)).plan.code == "pro"  # nothing changed yet
    done = client.post("/account/change-plan", data={"plan": "enterprise"}, headers={"HX-Request": "true"})
    html = done.get_data(as_text=True)
    assert "You are now on Enterprise. A prorated invoice was issued." in html
    proration = session.scalar(select(Invoice).where(Invoice.kind == "proration"))
    assert proration.total == 3613
    # The page's invoice list is refreshed in the same answer, out of band.
    recent = html[html.index('id="recent-invoices" hx-swap-oob="true"'):]
    assert proration.number in recent and "$36.13" in recent


def test_downgrade_from_the_page_is_scheduled(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 25)
    preview = client.get("/account/change-plan?plan=basic").get_data(as_text=True)
    assert "No charge today" in preview
    client.post("/account/change-plan", data={"plan": "basic"})
    html = client.get("/account").get_data(as_text=True)
    assert "Moves to Basic on Feb 10, 2024" in html


def test_invoices_filter_and_paginate(client, customer, session, settings):
    run_billing(session, utc(2025, 1, 10), settings, session.commit)  # 12 more periods
    first = client.get("/invoices").get_data(as_text=True)
    assert "Page 1 of 2" in first and "13 invoices" in first and "INV-000013" in first
    second = client.get("/invoices?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "INV-000001" in second and "INV-000013" not in second
    session.get(Invoice, 2).status = "paid"
    session.commit()
    paid = client.get("/invoices?status=paid").get_data(as_text=True)
    assert "INV-000002" in paid and "INV-000003" not in paid and "1 invoice" in paid


def test_invoice_page_shows_lines_totals_and_pay(client, customer):
    html = client.get("/invoices/1").get_data(as_text=True)
    assert "Pro plan" in html and "$29.00" in html and "Jan 24, 2024" in html and "Pay $29.00" in html


def test_notifications_show_what_was_sent(client, customer, session):
    session.add(Notification(user_id=customer.id, invoice_id=1, kind="reminder", step=-3,
                             subject="Reminder: invoice INV-000001 is due in 3 days", body="Hello",
                             sent_at=utc(2024, 1, 21)))
    session.commit()
    assert "Reminder: invoice INV-000001 is due in 3 days" in client.get("/notifications").get_data(as_text=True)


def test_another_customers_data_is_a_404(client, customer, make_user, session):
    login(client, make_user(email="eve@example.com"))
    assert client.get("/invoices/1").status_code == 404
    assert "INV-000001" not in client.get("/invoices").get_data(as_text=True)


def test_api_tokens_are_shown_once_and_can_be_revoked(client, customer, session):
    html = client.post("/tokens", data={"name": "CI"}).get_data(as_text=True)
    import re
    secret = re.search(r'id="new-token">(sbp_[^<]+)<', html).group(1)
    assert client.get("/api/invoices/", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in client.get("/tokens").get_data(as_text=True)
    client.post("/tokens/1/revoke")
    assert client.get("/api/invoices/", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
