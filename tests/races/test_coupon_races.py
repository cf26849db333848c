"""Ten customers redeem a promotion code with three uses left, at once, over HTTP against
gunicorn on PostgreSQL: three are subscribed with the discount, seven get 422 used up, no 500."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from portal.models import Coupon, CouponRedemption, PromotionCode, Subscription, utcnow
from portal.tokens import issue
from tests.races.conftest import at_once, no_server_errors

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def test_ten_simultaneous_redemptions_never_exceed_the_maximum(live, session, make_user):
    base, instance = live
    coupon = Coupon(name="Last three", percent_off=Decimal(10), duration="once", max_redemptions=3)
    session.add(PromotionCode(coupon=coupon, code="LAST3"))
    session.commit()
    secrets = [issue(session, make_user(), "race", utcnow())[1] for _ in range(10)]
    session.commit()
    responses = at_once(
        [
            lambda secret=secret: requests.post(
                f"{base}/api/subscribe/",
                json={"plan": "pro", "promotion_code": "last3"},
                headers={"Authorization": f"Bearer {secret}"},
                timeout=60,
            )
            for secret in secrets
        ]
    )
    no_server_errors(responses, instance)
    assert sorted(r.status_code for r in responses) == [201] * 3 + [422] * 7
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 422} == {"coupon_used_up"}
    session.expire_all()
    assert session.scalar(select(Coupon.times_redeemed)) == 3
    assert session.scalar(select(PromotionCode.times_redeemed)) == 3
    assert session.scalar(select(func.count()).select_from(CouponRedemption)) == 3
    assert session.scalar(select(func.count()).select_from(Subscription)) == 3
