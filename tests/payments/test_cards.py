"""Saved cards through the pages, with the demo provider behaving like Stripe's test cards."""

from __future__ import annotations

import pytest
from flask import g
from sqlalchemy import select

from portal.models import Invoice, Notification, Payment, PaymentAttempt, PaymentMethod, Subscription
from tests.conftest import login

NOW_DAY = "2024-01-10"


def add_card(client, number, month=12, year=2034):
    start = client.post("/account/card")
    assert start.status_code == 303 and "/demo/card/" in start.location
    page = client.get(start.location)
    assert page.status_code == 200 and "Add a card" in page.text
    return client.post(start.location, data={"number": number, "exp_month": month, "exp_year": year})


@pytest.fixture()
def clock(config):
    from tests.conftest import utc

    config["CLOCK"] = lambda: utc(2024, 1, 10, 12)


@pytest.mark.parametrize(
    "number, status, attempt_status, words",
    [
        ("4242 4242 4242 4242", "paid", "succeeded", "Paid with the saved card"),
        (
            "4000000000000341",
            "open",
            "failed",
            "The charge failed: your bank declined the card. We will try again on Jan 11, 2024.",
        ),
        ("4000000000009995", "open", "failed", "The charge failed: the card has insufficient funds."),
        ("4000002500003155", "open", "requires_action", "Your bank asks you to confirm this payment."),
    ],
)
def test_saving_a_test_card_charges_the_open_invoice_as_stripe_would(
    client, customer, session, clock, number, status, attempt_status, words
):
    answer = add_card(client, number)
    assert answer.status_code == 303
    session.expire_all()
    pm = session.scalar(select(PaymentMethod))
    assert (pm.last4, pm.is_default, pm.brand) == (number.replace(" ", "")[-4:], True, "visa")
    assert session.get(Subscription, 1).collection_method == "charge_automatically"
    [attempt] = session.scalars(select(PaymentAttempt)).all()
    assert (attempt.status, attempt.idempotency_key) == (attempt_status, "invoice-1-attempt-1")
    assert session.get(Invoice, 1).status == status
    page = client.get("/invoices/1")
    assert words in page.text
    account = client.get("/account")
    assert f"Visa •••• {pm.last4}" in account.text and "Update card" in account.text
    if attempt_status != "succeeded":
        assert ("Update card" in page.text and "Pay now" in page.text) or "Complete payment" in page.text
        kinds = {n.kind for n in session.scalars(select(Notification))}
        assert ("action_required" if attempt_status == "requires_action" else "charge_failed") in kinds


def test_a_declining_card_then_a_good_one_pays_the_invoice_once(client, customer, session, clock):
    add_card(client, "4000000000000341")
    add_card(client, "4242424242424242")
    session.expire_all()
    assert session.get(Invoice, 1).status == "paid"
    attempts = session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.attempt)).all()
    assert [a.status for a in attempts] == ["failed", "succeeded"]
    assert len(session.scalars(select(Payment)).all()) == 1
    cards = session.scalars(select(PaymentMethod).order_by(PaymentMethod.id)).all()
    assert [c.is_default for c in cards] == [False, True]


@pytest.mark.parametrize(
    "form, message",
    [
        ({"number": "1234 5678", "exp_month": 12, "exp_year": 2034}, "use one of Stripe&#39;s test cards"),
        ({"number": "4242x", "exp_month": 12, "exp_year": 2034}, "A card number has digits only."),
        ({"number": "4242424242424242", "exp_month": 13, "exp_year": 2034}, "A month is 1 to 12."),
        ({"number": "4242424242424242", "exp_month": 1, "exp_year": 2020}, "This card has expired"),
        ({"number": "", "exp_month": 1, "exp_year": 2030}, "Enter the card number."),
    ],
)
def test_a_bad_card_is_refused_on_the_page_with_what_to_do(client, customer, session, clock, form, message):
    start = client.post("/account/card").location
    answer = client.post(start, data=form)
    assert answer.status_code == 422 and message in answer.text
    assert session.scalar(select(PaymentMethod)) is None


def test_removing_the_card_goes_back_to_paying_by_hand(client, customer, session, clock):
    add_card(client, "4000000000000341")
    session.expire_all()
    pm = session.scalar(select(PaymentMethod))
    assert client.post(f"/account/card/{pm.id}/remove").status_code == 303
    session.expire_all()
    assert session.get(PaymentMethod, pm.id).removed_at is not None
    assert session.get(Subscription, 1).collection_method == "send_invoice"
    assert client.post(f"/account/card/{pm.id}/remove").status_code == 404
    assert "No card saved" in client.get("/account").text


def test_another_customers_card_and_setup_link_are_not_found(client, customer, session, clock, make_user):
    add_card(client, "4242424242424242")
    session.expire_all()
    pm = session.scalar(select(PaymentMethod))
    start = client.post("/account/card").location
    login(client, make_user(email="eve@example.com"))
    g.pop("_login_user", None)  # the tests' app context outlives requests: forget Ada
    assert client.post(f"/account/card/{pm.id}/remove").status_code == 404
    assert client.get(start).status_code == 404
    token = start.rsplit("/", 1)[1]
    forged = ("y" if token[0] == "x" else "x") + token[1:]  # the signed payload changed
    bad = client.get("/demo/card/" + forged, follow_redirects=True)
    assert "invalid or has expired" in bad.text


def test_the_failed_charge_notice_says_why_and_when_it_is_tried_again(client, customer, session, clock, mailbox):
    from portal.runtime import deliver_outbox

    mailbox()
    add_card(client, "4000000000000341")
    deliver_outbox(session)
    mail = mailbox()
    assert "The charge for invoice INV-000001 failed" in mail
    assert "to your Visa •••• 0341, but the charge failed: your bank declined the card." in mail
    assert "We will try again on Jan 11, 2024." in mail


def test_a_reminder_for_an_invoice_that_will_be_charged_says_so(client, customer, session, clock, mailbox):
    from portal.billing.invoices import send_reminder
    from portal.runtime import deliver_outbox
    from tests.conftest import utc

    add_card(client, "4000000000000341")  # failed today, retried tomorrow
    deliver_outbox(session)
    mailbox()
    send_reminder(session, session.get(Invoice, 1), utc(2024, 1, 10, 13))
    session.commit()
    deliver_outbox(session)
    mail = mailbox()
    assert "We will try your Visa •••• 0341 again on Jan 11, 2024" in mail and "Pay it here" not in mail


def test_paying_through_the_demo_checkout_can_save_the_card_with_consent(client, customer, session, clock):
    checkout = client.post("/invoices/1/pay", data={"save_card": "1"}).location
    assert "/demo/checkout/" in checkout
    assert client.post(checkout, data={"action": "pay"}).status_code == 303
    session.expire_all()
    assert session.get(Invoice, 1).status == "paid" and len(session.scalars(select(Payment)).all()) == 1
    pm = session.scalar(select(PaymentMethod))
    assert (pm.last4, pm.is_default) == ("4242", True)
    assert session.get(Subscription, 1).collection_method == "charge_automatically"


def test_paying_without_consent_saves_no_card(client, customer, session, clock):
    checkout = client.post("/invoices/1/pay").location
    client.post(checkout, data={"action": "pay"})
    assert session.scalar(select(PaymentMethod)) is None
