"""Saved cards and off-session charges through the real stripe SDK, against the project's
own fake and (where it covers the endpoints: customers, payment methods, payment intents)
against localstripe, a second and independent fake."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
import stripe
from sqlalchemy import func, select

from portal.billing import collection
from portal.models import Invoice, Payment, PaymentAttempt, PaymentMethod, User
from portal.payments import collect
from portal.payments.gateway import StripeGateway
from portal.runtime import billing_settings
from tests.conftest import free_port, utc
from tests.payments.fake_stripe import FakeStripe, event, signed

SECRET = "whsec_current"
CARDS = [
    # number, status, failure code on the project's fake, on localstripe
    ("4242424242424242", "succeeded", "", ""),
    ("4000000000000341", "failed", "card_declined", "card_declined"),
    ("4000002500003155", "requires_action", "authentication_required", "authentication_required"),
    # localstripe refuses this one when it is attached already (real Stripe attaches it and
    # declines the charge with insufficient_funds, as the project's fake does)
    ("4000000000009995", "failed", "insufficient_funds", "refused at attach"),
]


@pytest.fixture(scope="module")
def localstripe_base():
    port = free_port()
    code = (
        "import aiohttp.web, localstripe.server; "
        f"aiohttp.web.run_app(localstripe.server.app, host='127.0.0.1', port={port}, print=None)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("localstripe did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["own fake", "localstripe"])
def stripe_base(request):
    if request.param == "own fake":
        fake = FakeStripe()
        yield fake.start()
        fake.stop()
    else:
        yield request.getfixturevalue("localstripe_base")


def saved_card(base: str, gateway: StripeGateway, number: str, user_id: int) -> tuple[str, str]:
    """A customer and a card attached to it, as Checkout's set-up page leaves them."""
    customer = gateway.ensure_customer(User(id=user_id, email=f"c{user_id}@example.com", name=""))
    client = stripe.StripeClient("sk_test_123", base_addresses={"api": base})
    pm = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(pm.id, params={"customer": customer})
    return customer, pm.id


@pytest.mark.parametrize("number, status, own_code, localstripe_code", CARDS)
def test_off_session_charges_behave_like_stripes_test_cards(
    request, stripe_base, number, status, own_code, localstripe_code
):
    gateway = StripeGateway("sk_test_123", "", stripe_base)
    on_localstripe = "localstripe" in request.node.callspec.id
    if on_localstripe and localstripe_code == "refused at attach":
        with pytest.raises(stripe.CardError):
            saved_card(stripe_base, gateway, number, 1)
        return
    customer, pm = saved_card(stripe_base, gateway, number, abs(hash(number)) % 10_000)
    found = gateway.card(pm)
    assert found is not None and found[0] == customer
    assert (found[1].last4, found[1].exp_month, found[1].exp_year) == (number[-4:], 12, 2034)
    outcome = gateway.charge(customer, pm, 2900, "USD", f"invoice-1-attempt-{number}", 1)
    code = localstripe_code if on_localstripe else own_code
    assert (outcome.status, outcome.failure_code) == (status, code)
    assert outcome.provider == "stripe"
    if status != "failed" or outcome.provider_ref:
        key, again = gateway.payment_intent(outcome.provider_ref)
        assert key == f"invoice-1-attempt-{number}"
        assert again.status == status
    gateway.detach(pm)


# -- the app with Stripe configured, on the project's fake --------------------------------


@pytest.fixture()
def fake():
    fake = FakeStripe()
    fake.base = fake.start()
    yield fake
    fake.stop()


@pytest.fixture()
def stripe_on(config, fake):
    config.update(STRIPE_SECRET_KEY="sk_test_123", STRIPE_API_BASE=fake.base, STRIPE_WEBHOOK_SECRET=SECRET)
    config["CLOCK"] = lambda: utc(2024, 1, 10, 12)
    return fake


def deliver(client, payload):
    body, header = signed(payload, SECRET)
    return client.post(
        "/stripe/webhook", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )


def save_through_checkout(client, fake, number) -> str:
    start = client.post("/account/card")
    assert start.status_code == 303 and start.location.startswith("https://checkout.stripe.test/c/")
    sid = start.location.rsplit("/", 1)[1]
    assert fake.sessions[sid]["mode"] == "setup"
    fake.complete_setup(sid, number)
    back = client.get(f"/account/card/return?session_id={sid}")
    assert back.status_code == 303
    return sid


def count(session, model):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_a_card_saved_through_checkout_charges_the_open_invoice(client, customer, session, stripe_on):
    sid = save_through_checkout(client, stripe_on, "4242424242424242")
    session.expire_all()
    assert session.get(Invoice, 1).status == "paid"
    [pi] = stripe_on.payment_intents.values()
    assert pi["metadata"] == {"invoice_id": "1", "attempt_key": "invoice-1-attempt-1"} and pi["amount"] == 2900
    charge = next(r for r in stripe_on.requests if r["path"] == "/v1/payment_intents")
    assert charge["idempotency_key"] == "invoice-1-attempt-1" and charge["params"]["off_session"] == "true"
    # The webhook for the same set-up, late: the same card, no second row, no second charge.
    assert deliver(client, event("evt_setup", "checkout.session.completed", sid, mode="setup")).status_code == 200
    assert count(session, PaymentMethod) == 1 and count(session, PaymentAttempt) == 1
    assert len(stripe_on.payment_intents) == 1


def test_a_crash_between_recording_the_attempt_and_the_answer_never_charges_twice(
    app, client, customer, session, stripe_on
):
    save_through_checkout(client, stripe_on, "4000000000000341")  # declined: the invoice stays open
    # The customer's next card is good; the charge is recorded and sent, then the worker dies
    # before the answer is recorded.
    pm = stripe_on.complete_setup(client.post("/account/card").location.rsplit("/", 1)[1], "4242424242424242")
    user = session.get(User, customer.id)
    card = collection.CardDetails("stripe", pm, "visa", "4242", 12, 2034)
    collection.save_card(session, user.id, card, utc(2024, 1, 10, 12))
    attempt = collection.begin_attempt(session, 1, utc(2024, 1, 10, 12), force=True)
    session.commit()
    gateway = StripeGateway("sk_test_123", "", stripe_on.base)
    gateway.charge(user.stripe_customer_id, pm, attempt.amount, "USD", attempt.idempotency_key, 1)  # then: crash
    assert session.get(PaymentAttempt, attempt.id).status == "pending"
    # The hourly pass resumes it with the same key: Stripe answers with the first charge.
    counts = collect.resume_stale(session, gateway, utc(2024, 1, 10, 13), billing_settings(), session.commit)
    assert counts["charges_succeeded"] == 1
    succeeded = [p for p in stripe_on.payment_intents.values() if p["status"] == "succeeded"]
    assert len(succeeded) == 1
    # Again (a requeued job): nothing is due, nothing is sent.
    assert collect.resume_stale(session, gateway, utc(2024, 1, 10, 14), billing_settings(), session.commit) == {
        "charges_attempted": 0,
        "charges_succeeded": 0,
        "charges_failed": 0,
    }
    assert (
        collect.charge_invoices(
            session, gateway, [1], utc(2024, 1, 10, 14), billing_settings(), session.commit, force=True
        )["charges_attempted"]
        == 0
    )
    session.expire_all()
    assert session.get(Invoice, 1).status == "paid" and count(session, Payment) == 1


def test_a_duplicated_or_reordered_payment_intent_succeeded_is_harmless(client, customer, session, stripe_on):
    save_through_checkout(client, stripe_on, "4000002500003155")  # needs authentication off-session
    session.expire_all()
    attempt = session.scalar(select(PaymentAttempt))
    assert attempt.status == "requires_action"
    stripe_on.succeed(attempt.provider_ref)  # the customer authenticated
    succeeded = event("evt_ok", "payment_intent.succeeded", attempt.provider_ref, object="payment_intent")
    failed = event("evt_fail", "payment_intent.payment_failed", attempt.provider_ref, object="payment_intent")
    assert deliver(client, succeeded).status_code == 200
    assert deliver(client, succeeded).get_json() == {"received": True, "duplicate": True}
    assert deliver(client, {**succeeded, "id": "evt_ok_again"}).status_code == 200  # sent twice by Stripe
    assert deliver(client, failed).status_code == 200  # an older failure, arriving last
    session.expire_all()
    assert session.get(PaymentAttempt, attempt.id).status == "succeeded"
    assert session.get(Invoice, 1).status == "paid" and count(session, Payment) == 1


def test_a_detached_card_is_never_charged_again(client, customer, session, stripe_on):
    save_through_checkout(client, stripe_on, "4242424242424242")
    session.expire_all()
    pm = session.scalar(select(PaymentMethod))
    detached = event("evt_detach", "payment_method.detached", pm.provider_ref, object="payment_method")
    assert deliver(client, detached).status_code == 200
    session.expire_all()
    assert session.get(PaymentMethod, pm.id).removed_at is not None
    assert collection.default_card(session, customer.id) is None


def test_paying_through_checkout_can_save_the_card_with_consent(client, customer, session, stripe_on):
    answer = client.post("/invoices/1/pay", data={"save_card": "1"})
    assert answer.status_code == 303
    params = next(r for r in stripe_on.requests if r["path"] == "/v1/checkout/sessions")["params"]
    assert params["payment_intent_data[setup_future_usage]"] == "off_session"
    assert params["metadata[save_card]"] == "1"
    page = client.get("/invoices/1").text
    assert "Save this card and charge future invoices to it automatically" in page
