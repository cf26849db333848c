"""Issue 12, items 9-11: concurrent requests on PostgreSQL settle into one outcome, never a 500.

Each race is tried twice: in-process with one database session per thread (both
sessions read the state first, as the views do, then act at the same moment), and
as real parallel HTTP requests against gunicorn.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.billing.checkouts import PAID, Checkout
from portal.billing.errors import BillingError
from portal.billing.invoices import fulfil
from portal.billing.subscriptions import change_plan, find_plan, live_subscription, subscribe
from portal.extensions import db
from portal.models import NOTE_RECEIPT, Invoice, Notification, Payment, Subscription, User, utcnow
from portal.tokens import issue
from tests.races.conftest import at_once, browser_session, no_server_errors

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def on_pro(session, make_user, settings, n: int) -> list[User]:
    """n customers on Pro since today (real time: the live server bills as of now)."""
    users = [make_user() for _ in range(n)]
    for user in users:
        subscribe(session, user, find_plan(session, "pro"), utcnow(), settings)
    session.commit()
    return users


def in_threads(app, n: int, prepare, act) -> list:
    """n threads, each with its own app context and session: prepare(session) reads, then all
    act(session, prepared) together and commit. Returns each result or exception."""
    import threading

    ready = threading.Barrier(n)

    def one():
        with app.app_context():
            try:
                prepared = prepare(db.session)
                ready.wait(timeout=30)
                result = act(db.session, prepared)
                db.session.commit()
                return result
            except Exception as exc:
                db.session.rollback()
                return exc
            finally:
                db.session.remove()

    return at_once([one] * n)


# --- 9. concurrent "confirm upgrade" ---------------------------------------------------------


def test_concurrent_upgrades_in_sessions_issue_one_prorated_invoice(app, session, make_user, settings):
    [user] = on_pro(session, make_user, settings, 1)
    user_id = user.id  # read here: the test's own session is not for the threads

    def prepare(s):
        sub = live_subscription(s, user_id)
        _ = sub.plan  # loaded before the change, as the page does
        return sub

    def act(s, sub):
        return change_plan(s, sub, find_plan(s, "enterprise"), utcnow(), settings)

    results = in_threads(app, 4, prepare, act)
    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, BillingError) and e.code == "same_plan" for e in errors), errors
    assert len(errors) == 3
    assert count(session, Invoice, Invoice.kind == "proration") == 1


def test_ten_concurrent_confirm_upgrade_posts_issue_one_invoice_per_customer(live, session, make_user, settings):
    base, instance = live
    users = on_pro(session, make_user, settings, 4)
    webs = [browser_session(base, u.email) for u in users]
    calls = [
        (
            lambda web=web: web.post(
                f"{base}/account/change-plan",
                data={"csrf_token": web.csrf, "plan": "enterprise"},
                allow_redirects=False,
                timeout=60,
            )
        )
        for web in webs
        for _ in range(10)
    ]
    responses = at_once(calls)
    no_server_errors(responses, instance)
    assert {r.status_code for r in responses} == {303}
    for user in users:
        assert count(session, Invoice, Invoice.user_id == user.id, Invoice.kind == "proration") == 1, user.email
        assert live_subscription(session, user.id).plan.code == "enterprise"


# --- 10. two payments of one invoice at the same moment --------------------------------------


def test_two_payments_at_once_record_both_and_flag_the_second(app, session, make_user, settings):
    [user] = on_pro(session, make_user, settings, 1)
    invoice = session.scalar(select(Invoice).where(Invoice.user_id == user.id))
    refs = iter(["demo_first", "demo_second"])
    checkouts = [Checkout("demo", next(refs), invoice.id, invoice.total, invoice.currency, PAID) for _ in range(2)]
    lock = __import__("threading").Lock()

    def prepare(s):
        loaded = s.get(Invoice, checkouts[0].invoice_id)  # the pay page holds the open invoice
        with lock:
            return checkouts.pop(), loaded

    def act(s, prepared):
        checkout, loaded = prepared
        assert loaded.status == "open"
        return fulfil(s, checkout, utcnow(), settings)

    results = in_threads(app, 2, prepare, act)
    assert not [r for r in results if isinstance(r, Exception)], results
    payments = session.scalars(select(Payment).order_by(Payment.id)).all()
    assert len(payments) == 2 and {p.status for p in payments} == {"succeeded"}
    assert next(p.flag for p in payments) is None
    assert "already paid" in payments[1].flag
    assert count(session, Notification, Notification.kind == NOTE_RECEIPT) == 1
    assert session.get(Invoice, invoice.id).status == "paid"


def test_paying_one_invoice_twice_at_once_through_the_demo_checkout(live, session, make_user, settings):
    base, instance = live
    users = on_pro(session, make_user, settings, 3)
    calls = []
    for user in users:
        web = browser_session(base, user.email)
        invoice_id = session.scalar(select(Invoice.id).where(Invoice.user_id == user.id))
        for _ in range(2):  # two tabs: two checkouts of the same invoice, paid together
            started = web.post(
                f"{base}/invoices/{invoice_id}/pay", data={"csrf_token": web.csrf}, allow_redirects=False, timeout=30
            )
            assert started.status_code == 303, started.text
            url = (
                base + started.headers["Location"]
                if started.headers["Location"].startswith("/")
                else started.headers["Location"]
            )
            calls.append(
                lambda web=web, url=url: web.post(
                    url, data={"csrf_token": web.csrf, "action": "pay"}, allow_redirects=False, timeout=60
                )
            )
    responses = at_once(calls)
    no_server_errors(responses, instance)
    assert {r.status_code for r in responses} == {303}
    for n, user in enumerate(users):
        # A pay post either takes the payment (and goes on to the return page) or, when the
        # invoice is already paid by the time it loads it, takes nothing and says so.
        taken = sum("/payments/return" in r.headers["Location"] for r in responses[2 * n : 2 * n + 2])
        payments = session.scalars(select(Payment).join(Invoice).where(Invoice.user_id == user.id)).all()
        assert len(payments) == taken >= 1, user.email  # money received is always recorded
        assert sum(p.flag is None for p in payments) == 1  # the duplicate is flagged for a refund
        assert count(session, Notification, Notification.user_id == user.id, Notification.kind == NOTE_RECEIPT) == 1


# --- 11. concurrent subscribe ----------------------------------------------------------------


def test_concurrent_subscribes_in_sessions_make_one_subscription(app, session, make_user, settings):
    user_id = make_user().id
    session.commit()

    def prepare(s):
        return s.get(User, user_id)

    results = in_threads(app, 4, prepare, lambda s, u: subscribe(s, u, find_plan(s, "pro"), utcnow(), settings))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 3 and all(
        isinstance(e, BillingError) and e.code == "already_subscribed" and e.status == 409 for e in errors
    ), errors
    assert count(session, Subscription) == 1 and count(session, Invoice) == 1


def test_concurrent_subscribe_answers_409_not_500(live, session, make_user):
    base, instance = live
    api_users = [make_user() for _ in range(4)]
    form_users = [make_user() for _ in range(4)]
    secrets = [issue(session, u, "race", utcnow())[1] for u in api_users]
    session.commit()
    calls = [
        (
            lambda secret=secret: __import__("requests").post(
                f"{base}/api/subscribe/",
                json={"plan": "pro"},
                timeout=60,
                headers={"Authorization": f"Bearer {secret}"},
            )
        )
        for secret in secrets
        for _ in range(6)
    ]
    webs = [browser_session(base, u.email) for u in form_users]
    calls += [
        (
            lambda web=web: web.post(
                f"{base}/subscribe", data={"csrf_token": web.csrf, "plan": "pro"}, allow_redirects=False, timeout=60
            )
        )
        for web in webs
        for _ in range(6)
    ]
    responses = at_once(calls)
    no_server_errors(responses, instance)
    api, form = responses[:24], responses[24:]
    assert sorted(r.status_code for r in api) == [201] * 4 + [409] * 20
    assert all(r.json()["error"]["code"] == "already_subscribed" for r in api if r.status_code == 409)
    assert {r.status_code for r in form} == {303}
    for user in api_users + form_users:
        assert count(session, Subscription, Subscription.user_id == user.id) == 1, user.email
