"""Pay through Stripe Checkout: the real stripe SDK against a local fake Stripe."""

import threading

import pytest
from sqlalchemy import func, select

from portal.models import Invoice, Notification, Payment, Plan, Subscription, WebhookEvent
from tests.conftest import login, utc
from tests.payments.fake_stripe import FakeStripe, event, signed

SECRET = "whsec_current"


@pytest.fixture()
def fake_stripe():
    fake = FakeStripe()
    base = fake.start()
    yield fake, base
    fake.stop()


@pytest.fixture()
def stripe_on(config, fake_stripe):
    fake, base = fake_stripe
    config.update(
        STRIPE_SECRET_KEY="sk_test_123", STRIPE_API_BASE=base, STRIPE_WEBHOOK_SECRET=f"whsec_previous, {SECRET}"
    )
    return fake


def pay(client, invoice_id=1, **headers):
    return client.post(f"/invoices/{invoice_id}/pay", headers=headers)


def deliver(client, payload, secret=SECRET, timestamp=None):
    body, header = signed(payload, secret, timestamp)
    return client.post(
        "/stripe/webhook", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )


def started_session(client, stripe_on) -> str:
    assert pay(client).status_code == 303
    return list(stripe_on.sessions)[-1]


def test_pay_creates_a_checkout_session_for_the_invoice_amount(client, customer, stripe_on, session):
    response = pay(client)
    assert response.status_code == 303
    [sid] = stripe_on.sessions
    assert response.location == f"https://checkout.stripe.test/c/{sid}"
    customer_req, session_req = stripe_on.requests
    assert customer_req["path"] == "/v1/customers" and customer_req["params"]["email"] == "ada@example.com"
    assert customer_req["auth"] == "Bearer sk_test_123"
    p = session_req["params"]
    assert p["mode"] == "payment" and p["client_reference_id"] == "1" and p["metadata[invoice_id]"] == "1"
    assert p["line_items[0][price_data][unit_amount]"] == "2900"
    assert p["line_items[0][price_data][currency]"] == "usd"
    assert p["customer"] == stripe_on.customers[p["customer"]]["id"]
    assert p["success_url"] == "http://portal.test/payments/return?invoice_id=1&session_id={CHECKOUT_SESSION_ID}"
    assert p["cancel_url"] == "http://portal.test/invoices/1?payment=canceled"
    assert session_req["idempotency_key"] == "checkout-1-after-none"
    assert session.get(Invoice, 1).checkout_ref == sid


def test_pressing_pay_twice_reuses_the_open_session_and_the_customer(client, customer, stripe_on, session):
    first = pay(client).location
    second = pay(client).location
    assert first == second and len(stripe_on.sessions) == 1 and len(stripe_on.customers) == 1


def test_an_expired_session_gets_a_new_one_with_a_new_key(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.expire(sid)
    assert pay(client).status_code == 303
    assert len(stripe_on.sessions) == 2 and len(stripe_on.customers) == 1
    assert stripe_on.requests[-1]["idempotency_key"] == f"checkout-1-after-{sid}"


def test_htmx_pay_answers_with_hx_redirect(client, customer, stripe_on):
    response = pay(client, **{"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("https://checkout.stripe.test/")


def test_zero_decimal_currency_is_sent_as_is(client, session, make_user, stripe_on, settings):
    from portal.billing.subscriptions import subscribe

    plan = Plan(code="yen", name="Yen", price=500, currency="JPY", interval="month")
    session.add(plan)
    user = make_user()
    subscribe(session, user, plan, utc(2024, 1, 10), settings)
    session.commit()
    login(client, user)
    pay(client)
    params = stripe_on.requests[-1]["params"]
    assert params["line_items[0][price_data][unit_amount]"] == "500"  # not 50000
    assert params["line_items[0][price_data][currency]"] == "jpy"


def test_a_stripe_error_is_shown_and_the_invoice_is_unchanged(client, customer, stripe_on, session):
    stripe_on.refuse_next(402, "Your card was declined.")
    response = pay(client)
    assert response.status_code == 303 and response.location == "/invoices/1"
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "The payment could not be started: Your card was declined. Your invoice is unchanged." in page
    invoice = session.get(Invoice, 1)
    assert invoice.status == "open" and invoice.checkout_ref is None


def test_webhook_completed_marks_paid_once_with_a_receipt(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    response = deliver(client, event("evt_1", "checkout.session.completed", sid))
    assert response.status_code == 200 and response.json == {"received": True}
    invoice = session.get(Invoice, 1)
    assert invoice.status == "paid" and invoice.paid_at is not None
    [payment] = invoice.payments
    assert (payment.provider, payment.provider_ref, payment.amount, payment.currency, payment.status) == (
        "stripe",
        sid,
        2900,
        "USD",
        "succeeded",
    )
    assert session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "receipt")) == 1
    stored = session.scalar(select(WebhookEvent))
    assert stored.provider_event_id == "evt_1" and stored.processed_at is not None and '"evt_1"' in stored.payload


def test_the_webhook_refetches_the_session_rather_than_trusting_the_payload(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)  # still unpaid at Stripe
    payload = event("evt_lie", "checkout.session.completed", sid)
    payload["data"]["object"]["payment_status"] = "paid"
    assert deliver(client, payload).status_code == 200
    assert session.get(Invoice, 1).status == "open"


@pytest.mark.parametrize("how", ["bad_signature", "stale", "unknown_secret", "no_header"])
def test_unverified_webhooks_are_refused_and_change_nothing(client, customer, stripe_on, session, how):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    payload = event("evt_x", "checkout.session.completed", sid)
    if how == "bad_signature":
        body, header = signed(payload, SECRET)
        body = body.replace(b"evt_x", b"evt_y")
    elif how == "stale":
        body, header = signed(payload, SECRET, timestamp=int(utc(2020, 1, 1).timestamp()))
    elif how == "unknown_secret":
        body, header = signed(payload, "whsec_attacker")
    else:
        body, header = signed(payload, SECRET)
        header = ""
    response = client.post(
        "/stripe/webhook", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_signature"
    assert session.get(Invoice, 1).status == "open"
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_a_previous_secret_still_verifies_during_rotation(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    assert (
        deliver(client, event("evt_old", "checkout.session.completed", sid), secret="whsec_previous").status_code == 200
    )
    assert session.get(Invoice, 1).status == "paid"


def test_duplicates_and_out_of_order_events_record_one_payment(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    first = event("evt_1", "checkout.session.completed", sid)
    assert deliver(client, first).status_code == 200
    again = deliver(client, first)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert deliver(client, event("evt_2", "checkout.session.completed", sid)).status_code == 200
    stripe_on.expire(sid)
    assert deliver(client, event("evt_3", "checkout.session.expired", sid)).status_code == 200
    assert session.scalar(select(func.count()).select_from(Payment)) == 1
    assert session.get(Invoice, 1).status == "paid"
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 3


def test_async_payment_processing_then_succeeded(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, paid=False)  # e.g. a bank debit: complete, money not in yet
    deliver(client, event("evt_1", "checkout.session.completed", sid))
    [payment] = session.scalars(select(Payment)).all()
    assert payment.status == "pending" and session.get(Invoice, 1).status == "open"
    stripe_on.complete(sid, paid=True)
    deliver(client, event("evt_2", "checkout.session.async_payment_succeeded", sid))
    session.expire_all()
    assert session.get(Payment, payment.id).status == "succeeded"
    assert session.get(Invoice, 1).status == "paid"


def test_async_payment_failed_leaves_the_invoice_open(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, paid=False)
    deliver(client, event("evt_1", "checkout.session.completed", sid))
    deliver(client, event("evt_2", "checkout.session.async_payment_failed", sid))
    session.expire_all()
    assert session.scalar(select(Payment)).status == "failed"
    assert session.get(Invoice, 1).status == "open"


def test_amount_mismatch_is_flagged_and_leaves_the_invoice_unpaid(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, amount=100)
    deliver(client, event("evt_1", "checkout.session.completed", sid))
    payment = session.scalar(select(Payment))
    assert payment.flag.startswith("amount mismatch: paid 100 USD, invoice is 2900 USD")
    assert session.get(Invoice, 1).status == "open"


def test_a_payment_for_a_voided_invoice_is_recorded_and_flagged(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    session.get(Invoice, 1).status = "void"
    session.commit()
    stripe_on.complete(sid)
    deliver(client, event("evt_1", "checkout.session.completed", sid))
    payment = session.scalar(select(Payment))
    assert payment.status == "succeeded" and payment.flag == "paid an invoice that was voided"
    assert session.get(Invoice, 1).status == "void"


def test_an_unknown_invoice_is_acknowledged_and_ignored(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.sessions[sid]["client_reference_id"] = "999"
    stripe_on.complete(sid)
    assert deliver(client, event("evt_1", "checkout.session.completed", sid)).status_code == 200
    assert session.scalar(select(func.count()).select_from(Payment)) == 0


def test_other_event_types_are_recorded_and_ignored(client, customer, stripe_on, session):
    payload = {**event("evt_9", "customer.created", "cus_1"), "data": {"object": {"id": "cus_1"}}}
    assert deliver(client, payload).status_code == 200
    assert session.scalar(select(WebhookEvent)).type == "customer.created"


def test_paying_settles_a_past_due_subscription(client, customer, stripe_on, session):
    sub = session.scalar(select(Subscription))
    sub.status = "past_due"
    session.get(Invoice, 1).status = "overdue"
    session.commit()
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    deliver(client, event("evt_1", "checkout.session.completed", sid))
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "active"


def test_return_page_fulfils_when_the_webhook_is_late(client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    page = client.get(f"/payments/return?invoice_id=1&session_id={sid}").get_data(as_text=True)
    assert 'invoice <span class="nowrap">INV-000001</span> is paid' in page
    assert session.get(Invoice, 1).status == "paid"
    # The webhook arriving afterwards changes nothing.
    deliver(client, event("evt_1", "checkout.session.completed", sid))
    assert session.scalar(select(func.count()).select_from(Payment)) == 1


def test_return_page_polls_while_the_payment_is_processing(client, customer, stripe_on):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid, paid=False)
    response = client.get(
        f"/payments/return?invoice_id=1&session_id={sid}", headers={"HX-Request": "true", "HX-Target": "payment-status"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="payment-status"')
    assert 'hx-trigger="load delay:1s"' in html and "Confirming your payment" in html


def test_webhook_is_not_subject_to_csrf_but_pay_is(app, client, customer, stripe_on, config):
    config["WTF_CSRF_ENABLED"] = True
    assert pay(client).status_code == 400  # no token
    assert deliver(client, event("evt_c", "customer.created", "cus_1")).status_code == 200


def test_a_session_stripe_does_not_know_is_recorded_with_its_error(client, customer, stripe_on, session):
    response = deliver(client, event("evt_404", "checkout.session.completed", "cs_missing"))
    assert response.status_code == 200  # retrying cannot help: acknowledged, kept for staff
    stored = session.scalar(select(WebhookEvent))
    assert "No such resource" in stored.error and stored.processed_at is not None


def test_stripe_unreachable_asks_for_a_retry(client, customer, stripe_on, session, config):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    api_base = config["STRIPE_API_BASE"]
    config["STRIPE_API_BASE"] = "http://127.0.0.1:1"
    response = deliver(client, event("evt_down", "checkout.session.completed", sid))
    assert response.status_code == 503
    # Kept although a 503 rolls its request back: the error record was committed for staff.
    stored = session.scalar(select(WebhookEvent))
    assert stored.error and stored.processed_at is None
    assert session.get(Invoice, 1).status == "open"
    # Stripe delivers again once it is back: the same record is processed and closed.
    config["STRIPE_API_BASE"] = api_base
    assert deliver(client, event("evt_down", "checkout.session.completed", sid)).status_code == 200
    session.expire_all()
    [stored] = session.scalars(select(WebhookEvent)).all()
    assert stored.error is None and stored.processed_at is not None
    assert session.get(Invoice, 1).status == "paid"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_deliveries_at_once_record_one_payment(app, client, customer, stripe_on, session):
    sid = started_session(client, stripe_on)
    stripe_on.complete(sid)
    body, header = signed(event("evt_1", "checkout.session.completed", sid), SECRET)
    barrier, statuses = threading.Barrier(2), []

    def post():
        c = app.test_client()
        barrier.wait()
        statuses.append(
            c.post(
                "/stripe/webhook", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
            ).status_code
        )

    threads = [threading.Thread(target=post) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert statuses == [200, 200]
    assert session.scalar(select(func.count()).select_from(Payment)) == 1
    assert session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "receipt")) == 1
