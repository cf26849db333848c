"""The console's automatic collection: each invoice's attempts, "Charge now", the collection
method (audited), and the dashboard's failed charges and recovery rate."""

from sqlalchemy import select

from portal.billing.collection import CardDetails, save_card
from portal.models import AuditEntry, Invoice, PaymentAttempt, Subscription
from tests.admin.test_admin import book  # noqa: F401  (the known business)
from tests.conftest import utc

DECLINES = CardDetails("demo", "pm_demo_decline_1", "visa", "0341", 12, 2034)
GOOD = CardDetails("demo", "pm_demo_ok_1", "visa", "4242", 12, 2034)


def test_charge_now_records_an_audited_attempt_and_shows_it(client, staff, book, session):
    ada, _ = book
    save_card(session, ada.id, DECLINES, utc(2024, 3, 5))
    session.commit()
    answer = client.post("/admin/invoice/charge-now/?id=3")
    assert answer.status_code == 302
    page = client.get(answer.location).text
    assert "charge failed" in page and "card_declined: your bank declined the card" in page
    assert "invoice-3-attempt-1" in page
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "charge_now")).all()
    assert (entry.actor_id, entry.object_id) == (staff.id, 3)
    dashboard = client.get("/admin/").text
    assert 'id="failed-charges">1<' in dashboard and 'id="recovery-rate">0%<' in dashboard
    save_card(session, ada.id, GOOD, utc(2024, 3, 5))
    session.commit()
    client.post("/admin/invoice/charge-now/?id=3")
    session.expire_all()
    assert session.get(Invoice, 3).status == "paid"
    assert [a.status for a in session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id))] == [
        "failed",
        "succeeded",
    ]
    assert 'id="recovery-rate">100%<' in client.get("/admin/").text
    nothing = client.post("/admin/invoice/charge-now/?id=3", follow_redirects=True).text
    assert "nothing to charge" in nothing


def test_staff_switch_the_collection_method_audited(client, staff, book, session):
    ada, _ = book
    refused = client.post("/admin/subscription/collection/?id=1", data={"method": "charge_automatically"})
    assert refused.status_code == 302
    assert "no saved card" in client.get(refused.location).text
    save_card(session, ada.id, GOOD, utc(2024, 3, 5))
    session.commit()
    client.post("/admin/subscription/collection/?id=1", data={"method": "send_invoice"})
    session.expire_all()
    assert session.get(Subscription, 1).collection_method == "send_invoice"
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "collection_method")).all()
    assert (entry.actor_id, entry.detail) == (staff.id, "charge_automatically -> send_invoice")
    assert client.post("/admin/subscription/collection/?id=1", data={"method": "cash"}).status_code == 400
    assert client.post("/admin/subscription/collection/?id=999", data={"method": "send_invoice"}).status_code == 404
