"""Promotion codes on the subscribe page and the account page, without JavaScript and as htmx fragments."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.models import Coupon, CouponRedemption, Invoice, PromotionCode, Subscription
from tests.conftest import login


@pytest.fixture()
def newcomer(session, make_user, client):
    """A logged-in customer without a subscription."""
    user = make_user(email="nia@example.com", name="Nia")
    login(client, user)
    return user


@pytest.fixture()
def codes(session):
    coupon = Coupon(name="Launch 20 %", percent_off=Decimal(20), duration="repeating", duration_periods=3)
    session.add_all(
        [PromotionCode(coupon=coupon, code="LAUNCH"), PromotionCode(coupon=coupon, code="OFF", active=False)]
    )
    session.commit()


def test_apply_shows_the_new_price_and_subscribes_nothing(client, newcomer, codes, session):
    page = client.post("/subscribe", data={"plan": "pro", "promotion_code": "launch", "apply": "1"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "\u2212$5.80" in html and "$23.20" in html and "20 % off for 3 billing periods" in html
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0


@pytest.mark.parametrize(
    "code, message",
    [("nope", "This code does not exist."), ("off", "This code is not available at the moment."), ("x" * 65, "")],
)
def test_a_bad_code_is_a_form_error_on_confirm(client, newcomer, codes, session, code, message):
    page = client.post("/subscribe", data={"plan": "pro", "promotion_code": code})
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'class="error"' in html and message in html
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_the_htmx_preview_answers_the_fragment(client, newcomer, codes):
    headers = {"HX-Request": "true", "HX-Target": "subscribe-quote"}
    good = client.post("/subscribe/preview", data={"plan": "pro", "promotion_code": "LAUNCH"}, headers=headers)
    assert good.status_code == 200 and "<html" not in good.get_data(as_text=True)
    assert 'id="subscribe-quote"' in good.get_data(as_text=True) and "\u2212$5.80" in good.get_data(as_text=True)
    bad = client.post("/subscribe/preview", data={"plan": "pro", "promotion_code": "off"}, headers=headers)
    assert bad.status_code == 422 and "This code is not available at the moment." in bad.get_data(as_text=True)
    assert client.post("/subscribe/preview", data={"plan": "nope"}, headers=headers).status_code == 404


def test_confirm_with_a_code_discounts_the_first_invoice(client, newcomer, codes, session):
    done = client.post("/subscribe", data={"plan": "pro", "promotion_code": "Launch"})
    assert done.status_code == 303
    invoice = session.scalars(select(Invoice)).one()
    assert [line.amount for line in invoice.lines] == [2900, -580] and invoice.total == 2320
    shown = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Discount: Launch 20 %" in shown


def test_the_account_page_redeems_a_code_for_the_next_invoices(client, newcomer, codes, session):
    client.post("/subscribe", data={"plan": "pro"})
    bad = client.post("/account/promotion-code", data={"promotion_code": "off"})
    assert bad.status_code == 422 and "This code is not available at the moment." in bad.get_data(as_text=True)
    preview = client.post("/account/promotion-code", data={"promotion_code": "launch", "apply": "1"})
    assert preview.status_code == 200 and "$23.20" in preview.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(CouponRedemption)) == 0
    done = client.post("/account/promotion-code", data={"promotion_code": "launch"})
    assert done.status_code == 303
    redemption = session.scalars(select(CouponRedemption)).one()
    assert (redemption.first_period, redemption.end_period) == (1, 4)
    again = client.post("/account/promotion-code", data={"promotion_code": "launch"})
    assert again.status_code == 422 and "You have already used this code." in again.get_data(as_text=True)
