"""The offline demo provider, end to end with the test client."""

from sqlalchemy import select

from portal.models import Invoice, Notification, Payment


def test_demo_checkout_pays_through_the_same_fulfil(client, customer, session):
    to_checkout = client.post("/invoices/1/pay")
    assert to_checkout.status_code == 303 and to_checkout.location.startswith("/demo/checkout/")
    page = client.get(to_checkout.location).get_data(as_text=True)
    assert "TEST MODE" in page and "$29.00" in page and "INV-000001" in page
    back = client.post(to_checkout.location, data={"action": "pay"})
    assert back.status_code == 303 and back.location == "/payments/return?invoice_id=1"
    assert 'invoice <span class="nowrap">INV-000001</span> is paid' in client.get(back.location).get_data(as_text=True)
    [payment] = session.scalars(select(Payment)).all()
    assert payment.provider == "demo" and payment.amount == 2900 and payment.status == "succeeded"
    assert session.get(Invoice, 1).status == "paid"
    assert session.scalar(select(Notification).where(Notification.kind == "receipt")) is not None
    # Paying the same checkout again (back button, double click) changes nothing.
    client.post(to_checkout.location, data={"action": "pay"})
    assert len(session.scalars(select(Payment)).all()) == 1


def test_demo_cancel_returns_to_the_invoice_calmly(client, customer, session):
    location = client.post("/invoices/1/pay").location
    back = client.post(location, data={"action": "cancel"})
    assert back.location == "/invoices/1?payment=canceled"
    assert "Payment canceled. Nothing was charged" in client.get(back.location).get_data(as_text=True)
    assert session.get(Invoice, 1).status == "open"


def test_a_forged_demo_token_is_refused(client, customer, session):
    location = client.post("/invoices/1/pay").location
    forged = location[:-3] + "xyz"
    response = client.post(forged, data={"action": "pay"})
    assert response.status_code == 303
    assert "invalid or has expired" in client.get(response.location).get_data(as_text=True)
    assert session.scalars(select(Payment)).all() == []


def test_paying_a_paid_invoice_is_refused(client, customer, session):
    session.get(Invoice, 1).status = "paid"
    session.commit()
    response = client.post("/invoices/1/pay")
    assert response.location == "/invoices/1#receipt"
    assert "INV-000001 is already paid" in client.get("/invoices/1").get_data(as_text=True)


def test_someone_elses_invoice_cannot_be_paid_or_seen(client, customer, make_user, session):
    from tests.conftest import login

    login(client, make_user(email="eve@example.com"))
    assert client.post("/invoices/1/pay").status_code == 404
    assert client.get("/invoices/1").status_code == 404


def test_a_reopened_demo_checkout_of_a_paid_invoice_says_it_is_paid(client, customer, session):
    location = client.post("/invoices/1/pay").location
    client.post(location, data={"action": "pay"})
    reopened = client.get(location)  # the checkout tab, opened again
    assert reopened.status_code == 303 and reopened.location == "/invoices/1#receipt"
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "INV-000001 is already paid" in page and 'id="receipt"' in page and "Pay $29.00" not in page
    # A stale tab's Pay button: the same plain answer, no new payment.
    assert client.post("/invoices/1/pay").location == "/invoices/1#receipt"
    assert len(session.scalars(select(Payment)).all()) == 1
