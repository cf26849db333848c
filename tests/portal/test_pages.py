import re

import pytest
from sqlalchemy import select

from portal.billing.invoicing import run_billing
from portal.models import Invoice, Notification, Subscription
from tests.conftest import login, utc

PAGES = [
    "/account",
    "/invoices",
    "/invoices/1",
    "/notifications",
    "/tokens",
    "/password",
    "/account/change-plan?plan=enterprise",
]


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
    assert "Active" in html and "Jan 10, 2024 – Feb 10, 2024" in html  # noqa: RUF001  (the page's en dash)
    assert "Feb 10, 2024 · $29.00" in html


def test_htmx_gets_the_partial_it_targets_and_everything_else_the_page(client, customer):
    full = client.get("/account")
    part = client.get("/account", headers={"HX-Request": "true", "HX-Target": "subscription"})
    assert "<html" in full.get_data(as_text=True)
    assert part.get_data(as_text=True).lstrip().startswith('<section class="card" id="subscription">')
    for response in (full, part):
        assert {"HX-Request", "HX-Boosted", "HX-Target"} <= set(response.vary)
    listing = client.get("/invoices?status=open", headers={"HX-Request": "true", "HX-Target": "invoices"})
    html = listing.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="invoices">') and "INV-000001" in html


BOOSTED = {"HX-Request": "true", "HX-Boosted": "true", "HX-Target": "body", "HX-Current-URL": "http://x/"}


@pytest.mark.parametrize(
    "path",
    [
        "/account",
        "/invoices",
        "/invoices?status=paid",
        "/invoices/1",
        "/pricing",
        "/notifications",
        "/tokens",
        "/invoices/999",
        "/account/change-plan?plan=enterprise",
    ],
)
def test_a_boosted_link_gets_the_whole_page(client, customer, path):
    """A top-bar click (hx-boost) sends HX-Request too: it must get the top bar and heading."""
    html = client.get(path, headers=BOOSTED).get_data(as_text=True)
    assert '<header class="topbar">' in html and "<h1" in html, html[:300]


@pytest.mark.parametrize("value", ["paid", "open", "overdue", "void", "0", "999", "bogus", ""])
def test_an_invoice_filter_never_becomes_the_http_status(client, customer, value):
    for headers in ({}, {"HX-Request": "true", "HX-Target": "invoices"}, BOOSTED):
        response = client.get(f"/invoices?status={value}", headers=headers)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        chosen = value if value in ("paid", "open", "overdue", "void") else None
        marked = re.search(r'<a href="/invoices(\?status=(\w+))?"[^>]*aria-current="true"', html, re.S)
        assert marked and marked.group(2) == chosen, html


def test_cancel_and_resume_in_place(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 20)
    hx = {"HX-Request": "true", "HX-Target": "subscription"}
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
    preview = client.get(
        "/account/change-plan?plan=enterprise", headers={"HX-Request": "true", "HX-Target": "change-preview"}
    ).get_data(as_text=True)
    assert preview.lstrip().startswith('<div class="preview"')
    assert "$36.13" in preview and "16 of 31 days left" in preview  # 7000 * 16/31
    assert session.scalar(select(Subscription)).plan.code == "pro"  # nothing changed yet
    done = client.post(
        "/account/change-plan", data={"plan": "enterprise"}, headers={"HX-Request": "true", "HX-Target": "subscription"}
    )
    html = done.get_data(as_text=True)
    proration = session.scalar(select(Invoice).where(Invoice.kind == "proration"))
    assert proration.total == 3613
    assert f"You are now on Enterprise. Invoice {proration.number} for $36.13" in html
    # What is due and the invoice list are refreshed in the same answer, out of band,
    # with the new invoice's amount and a Pay button.
    to_pay = html[html.index('id="to-pay" hx-swap-oob="true"') :]
    assert f'action="/invoices/{proration.id}/pay"' in to_pay and "Pay $36.13" in to_pay
    recent = html[html.index('id="recent-invoices" hx-swap-oob="true"') :]
    assert proration.number in recent and "$36.13" in recent
    # Its "issued" notice is queued now, not at the next daily run.
    assert session.scalar(
        select(Notification).where(Notification.invoice_id == proration.id, Notification.kind == "invoice_issued")
    )


def test_downgrade_from_the_page_credits_the_unused_time(client, customer, session, config):
    config["CLOCK"] = lambda: utc(2024, 1, 25)
    preview = client.get("/account/change-plan?plan=basic").get_data(as_text=True)
    assert "now credits" in preview and "$10.32" in preview  # 2000 * 16/31 days, before tax
    client.post("/account/change-plan", data={"plan": "basic"})
    html = client.get("/account").get_data(as_text=True)
    assert "Credit balance" in html and 'id="credit-balance-usd"' in html and "$10.32" in html
    assert "Unused time on Pro after moving to Basic (16 of 31 days)" in html


def test_invoices_filter_and_paginate(client, customer, session, settings):
    run_billing(session, utc(2025, 1, 10), settings, session.commit)  # 12 more periods
    first = client.get("/invoices").get_data(as_text=True)
    assert "Page 1 of 2" in first and "13 invoices" in first and "INV-000013" in first
    second = client.get("/invoices?page=2", headers={"HX-Request": "true", "HX-Target": "invoices"}).get_data(
        as_text=True
    )
    assert "INV-000001" in second and "INV-000013" not in second
    session.get(Invoice, 2).status = "paid"
    session.commit()
    paid = client.get("/invoices?status=paid").get_data(as_text=True)
    assert "INV-000002" in paid and "INV-000003" not in paid and "1 invoice" in paid


def test_invoice_page_shows_lines_totals_and_pay(client, customer):
    html = client.get("/invoices/1").get_data(as_text=True)
    assert "Pro plan" in html and "$29.00" in html and "Jan 24, 2024" in html and "Pay $29.00" in html


def test_notifications_show_what_was_sent(client, customer, session):
    session.add(
        Notification(
            user_id=customer.id,
            invoice_id=1,
            kind="reminder",
            step=-3,
            subject="Reminder: invoice INV-000001 is due in 3 days",
            body="Hello",
            sent_at=utc(2024, 1, 21),
        )
    )
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


def test_the_plan_chosen_on_the_pricing_page_survives_sign_up(client, session, config, mailbox):
    config["CLOCK"] = lambda: utc(2024, 1, 31, 9)
    pricing = client.get("/pricing").get_data(as_text=True)
    assert 'href="/signup?plan=pro"' in pricing
    form = client.get("/signup?plan=pro").get_data(as_text=True)
    assert "Your plan: <strong>Pro</strong>" in form and 'name="plan" type="hidden" value="pro"' in form
    signed_up = client.post(
        "/signup",
        data={"email": "new@example.com", "password": "a long password", "confirm": "a long password", "plan": "pro"},
    )
    assert signed_up.status_code == 303 and signed_up.location == "/login"  # after the mailed link:
    link = re.search(r"http://portal\.test(/signup/confirm/\S+)", mailbox()).group(1)
    confirmed = client.post(link)
    assert confirmed.status_code == 303 and confirmed.location == "/subscribe?plan=pro"
    summary = client.get(confirmed.location).get_data(as_text=True)
    assert session.scalar(select(Subscription)) is None  # nothing is charged before confirming
    assert "$29.00 / month" in summary
    assert re.search(r'id="due-today">\$29\.00<', summary)
    assert re.search(r'id="next-billing">Feb 29, 2024 · \$29\.00<', summary)  # Jan 31 + 1 month, clamped
    done = client.post("/subscribe", data={"plan": "pro"})
    assert done.status_code == 303 and done.location == "/account"
    account = client.get("/account").get_data(as_text=True)
    assert "You are subscribed to Pro" in account
    assert 'action="/invoices/1/pay"' in account and "Pay $29.00" in account
    # The first invoice's notice is queued at once, not at the next daily run.
    assert session.scalar(select(Notification).where(Notification.invoice_id == 1)).kind == "invoice_issued"


def test_a_trial_plan_summary_charges_nothing_today(client, customer, session, make_user, config):
    config["CLOCK"] = lambda: utc(2024, 1, 10, 9)
    from portal.models import Plan

    session.scalar(select(Plan).where(Plan.code == "basic")).trial_days = 14
    session.commit()
    login(client, make_user(email="trial@example.com"))
    summary = client.get("/subscribe?plan=basic").get_data(as_text=True)
    assert re.search(r'id="due-today">\$0\.00<', summary) and "14 days, until Jan 24, 2024" in summary
    assert re.search(r'id="next-billing">Jan 24, 2024 · \$9\.00<', summary)


def test_choosing_a_plan_when_subscribed_shows_the_change_instead(client, customer):
    response = client.get("/subscribe?plan=enterprise")
    assert response.status_code == 303 and response.location == "/account/change-plan?plan=enterprise"


def test_choosing_the_current_plan_is_a_plain_note_not_an_error(client, customer):
    html = client.get(
        "/account/change-plan?plan=pro", headers={"HX-Request": "true", "HX-Target": "change-preview"}
    ).get_data(as_text=True)
    assert "You are already on the Pro plan." in html and "flash error" not in html


def test_billed_to_names_the_email_once_when_there_is_no_name(client, customer, session):
    customer.name = ""
    session.commit()
    html = client.get("/invoices/1").get_data(as_text=True)
    assert html.count("ada@example.com") == 1 + html.count('id="staff-user"')


def test_favicon(client, session):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"


def test_a_fragment_request_after_the_session_ended_moves_the_whole_page_to_log_in(client, session):
    """A filter click in a tab whose session ended must not nest the log-in page in the list."""
    response = client.get(
        "/invoices?status=paid",
        headers={
            "HX-Request": "true",
            "HX-Target": "invoices",
            "HX-Current-URL": "http://portal.test/invoices?status=open",
        },
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/login?next=/invoices?status%3Dopen"
    plain = client.get("/invoices?status=paid")
    assert plain.status_code == 302 and plain.location == "/login?next=/invoices?status%3Dpaid"


def test_an_error_page_answering_a_fragment_request_replaces_the_body(client, customer, config):
    config["WTF_CSRF_ENABLED"] = True
    response = client.post("/account/cancel", headers={"HX-Request": "true", "HX-Target": "subscription"})
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "body" and response.headers["HX-Reswap"] == "innerHTML"


@pytest.mark.parametrize(
    "path", ["/account/change-plan?plan=pro", "/account/change-plan?plan=nope", "/subscribe?plan=enterprise", "/signup"]
)
def test_answers_that_depend_on_htmx_headers_vary_on_them(client, customer, path):
    for headers in ({}, {"HX-Request": "true", "HX-Target": "change-preview"}):
        response = client.get(path, headers=headers)
        assert {"HX-Request", "HX-Boosted", "HX-Target"} <= set(response.vary), (path, response.status_code)


def test_a_signed_in_customer_is_not_offered_the_sign_up_form(client, customer):
    assert client.get("/signup").location == "/account"
    assert client.get("/signup?plan=enterprise").location == "/subscribe?plan=enterprise"


def test_the_sign_up_form_keeps_the_chosen_plan_in_its_address(client, session):
    """After an error the address bar shows the form's action: a reload must keep the plan."""
    html = client.post("/signup?plan=pro", data={"email": "bad", "plan": "pro"}).get_data(as_text=True)
    assert 'action="/signup?plan=pro"' in html and "Your plan: <strong>Pro</strong>" in html


def test_a_new_api_token_is_never_cached(client, customer):
    response = client.post("/tokens", data={"name": "ci"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="new-token"' in html
    assert response.headers["Cache-Control"] == "no-store" and 'hx-history="false"' in html
    assert "no-store" not in client.get("/tokens").headers.get("Cache-Control", "")


def test_to_pay_shows_the_five_most_urgent_and_links_to_all_unpaid(client, customer, session, settings):
    run_billing(session, utc(2024, 12, 10), settings, session.commit)  # 11 more periods, none paid
    html = client.get("/account").get_data(as_text=True)
    to_pay = html[html.index('id="to-pay"') : html.index('id="recent-invoices"')]
    assert to_pay.count('class="button" type="submit">Pay') == 5
    assert "INV-000001" in to_pay and "INV-000006" not in to_pay  # the oldest due first
    assert 'href="/invoices?status=unpaid">All 12 unpaid invoices' in to_pay
    unpaid = client.get("/invoices?status=unpaid").get_data(as_text=True)
    assert "12 invoices" in unpaid and 'aria-current="true">Unpaid</a>' in unpaid
