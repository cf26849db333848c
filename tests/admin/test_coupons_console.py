"""Staff create coupons and promotion codes in the console, pause and unpause them (audited), see redemptions."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import AuditEntry, Coupon, Invoice, PromotionCode
from tests.conftest import utc


def test_staff_create_a_coupon_and_a_code_and_pause_them(client, staff, session, make_user):
    made = client.post(
        "/admin/coupon/new/",
        data={"name": "Spring 12.5", "percent_off": "12.5", "duration": "repeating", "duration_periods": "3",
              "max_redemptions": "100", "active": "y"},
    )  # fmt: skip
    assert made.status_code == 302, made.get_data(as_text=True)
    coupon = session.scalars(select(Coupon)).one()
    assert (coupon.percent_off, coupon.duration_periods, coupon.currency) == (Decimal("12.5"), 3, None)
    code = client.post(
        "/admin/promotioncode/new/", data={"code": "spring-25 ", "coupon": str(coupon.id), "active": "y"}
    )
    assert code.status_code == 302
    promo = session.scalars(select(PromotionCode)).one()
    assert promo.code == "SPRING-25"
    again = client.post("/admin/promotioncode/new/", data={"code": "Spring-25", "coupon": str(coupon.id)})
    assert again.status_code == 200 and "exists already" in again.get_data(as_text=True)

    client.post("/admin/promotioncode/action/", data={"action": "pause", "rowid": [str(promo.id)]})
    client.post("/admin/coupon/action/", data={"action": "pause", "rowid": [str(coupon.id)]})
    client.post("/admin/coupon/action/", data={"action": "unpause", "rowid": [str(coupon.id)]})
    session.expire_all()
    assert (promo.active, coupon.active) == (False, True)
    actions = session.scalars(
        select(AuditEntry.action + ":" + AuditEntry.object_type).where(AuditEntry.actor_id == staff.id)
    ).all()
    assert actions == ["create:Coupon", "create:PromotionCode", "pause:PromotionCode", "pause:Coupon", "unpause:Coupon"]

    customer = make_user(email="ada@example.com")
    client.post("/admin/promotioncode/action/", data={"action": "unpause", "rowid": [str(promo.id)]})
    subscribe(session, customer, find_plan(session, "pro"), utc(2024, 3, 5, 9), BillingSettings(), "spring-25")
    session.commit()
    listing = client.get("/admin/couponredemption/").get_data(as_text=True)
    assert "ada@example.com" in listing and "SPRING-25" in listing
    assert "1 / 100" in client.get("/admin/coupon/").get_data(as_text=True)
    invoice = session.scalars(select(Invoice).where(Invoice.user_id == customer.id)).one()
    details = client.get(f"/admin/invoice/details/?id={invoice.id}").get_data(as_text=True)
    assert "Discount: Spring 12.5" in details and "-$3.63" in details and "$25.37" in details


def test_a_coupon_with_both_or_neither_discount_is_refused(client, staff, session):
    both = client.post("/admin/coupon/new/", data={"name": "x", "percent_off": "10", "amount_off": "100",
                                                   "currency": "USD", "duration": "once"})  # fmt: skip
    assert both.status_code == 200 and "not both" in both.get_data(as_text=True)
    no_currency = client.post("/admin/coupon/new/", data={"name": "x", "amount_off": "100", "duration": "once"})
    assert "needs its currency" in no_currency.get_data(as_text=True)
    no_periods = client.post("/admin/coupon/new/", data={"name": "x", "percent_off": "10", "duration": "repeating"})
    assert "number of billing periods" in no_periods.get_data(as_text=True)
    assert session.scalars(select(Coupon)).all() == []


def test_editing_a_coupon_keeps_its_discount(client, staff, session):
    coupon = Coupon(name="Old", amount_off=500, currency="USD", duration="once")
    session.add(coupon)
    session.commit()
    edited = client.post(f"/admin/coupon/edit/?id={coupon.id}", data={"name": "New", "max_redemptions": "7"})
    assert edited.status_code == 302, edited.get_data(as_text=True)
    session.expire_all()
    assert (coupon.name, coupon.max_redemptions, coupon.amount_off, coupon.currency) == ("New", 7, 500, "USD")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "edit")).one()
    assert entry.object_type == "Coupon" and entry.actor_id == staff.id
