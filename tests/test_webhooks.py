"""Outbound webhooks end to end: a receiver on loopback checks each delivery's Standard
Webhooks signature, the order of events, retries, and that a receiver down for a while
gets every event once it is back. A change rolled back sends nothing."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from portal.billing import webhooks
from portal.billing.subscriptions import cancel, find_plan, subscribe
from portal.jobs import context, embedded, tasks
from portal.models import DLV_SUCCEEDED, OutboundEvent, WebhookAttempt, WebhookDelivery
from portal.webhooks import urls
from portal.webhooks.sender import Sender
from tests.conftest import free_port, utc


class Receiver:
    """A webhook receiver on 127.0.0.1: verifies each delivery with the endpoint's secret,
    keeps the verified payloads in arrival order, answers `status` (or is down)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.secret = ""
        self.status = 204
        self.received: list[dict] = []
        self.ids: list[str] = []
        self.bad_signatures = 0
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.status < 300:
                    try:
                        payload = Webhook(receiver.secret).verify(body, dict(self.headers))
                    except Exception:
                        receiver.bad_signatures += 1
                        self.send_response(400)
                        self.end_headers()
                        return
                    receiver.received.append(payload)
                    receiver.ids.append(self.headers["webhook-id"])
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"thanks" if receiver.status < 300 else b"try later")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def types(self) -> list[str]:
        return [p["type"] for p in self.received]


@pytest.fixture()
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture()
def clock(app, monkeypatch):
    c = Clock(utc(2024, 1, 31, 8))
    # The app is shared by the whole session: these settings must not outlive the test.
    for key, value in {"CLOCK": c, "WEBHOOKS_ALLOW_PRIVATE_URLS": True, "WEBHOOKS_TIMEOUT": 2}.items():
        monkeypatch.setitem(app.config, key, value)
    context.use_app(app)
    return c


def register(session, receiver, event_types=None, clock=None):
    endpoint = webhooks.create_endpoint(
        session,
        receiver.url,
        event_types or webhooks.events.EVENT_TYPES,
        "our app",
        clock.now if clock else utc(2024, 1, 1),
        actor_id=None,
    )
    session.commit()
    receiver.secret = endpoint.secret
    return endpoint


def deliver() -> dict:
    return tasks.deliver_webhooks()


def test_signed_deliveries_arrive_in_order(session, make_user, settings, receiver, clock):
    register(session, receiver, clock=clock)
    user = make_user()
    sub = subscribe(session, user, find_plan(session, "pro"), clock.now, settings)
    cancel(session, sub, clock.now)
    session.commit()
    assert deliver()["sent"] == 3
    assert receiver.bad_signatures == 0
    assert receiver.types() == ["subscription.created", "invoice.issued", "subscription.updated"]
    assert receiver.received[0]["data"]["customer_id"] == user.id
    assert receiver.ids == sorted(receiver.ids, key=lambda i: int(i.removeprefix("evt_")))
    assert deliver()["sent"] == 0  # each event once
    attempt = session.scalars(select(WebhookAttempt)).first()
    assert attempt.ok and attempt.response_code == 204


def test_a_failing_receiver_is_retried_with_backoff_and_gets_the_events_in_order(
    session, make_user, settings, receiver, clock
):
    endpoint = register(session, receiver, clock=clock)
    subscribe(session, make_user(), find_plan(session, "pro"), clock.now, settings)
    session.commit()
    receiver.status = 503
    assert deliver() == {"dispatched": 2, "sent": 0, "failed": 1, "more": False}
    delivery = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.event_id)).first()
    session.refresh(delivery)
    assert delivery.attempts == 1 and delivery.response_code == 503
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=5)
    assert delivery.attempt_log[0].response_body == "try later"
    clock.now += dt.timedelta(seconds=4)
    assert deliver()["failed"] == 0  # not yet due: nothing sent, nothing overtakes it
    receiver.status = 200
    clock.now += dt.timedelta(seconds=1)
    assert deliver()["sent"] == 2
    assert receiver.types() == ["subscription.created", "invoice.issued"]
    session.refresh(endpoint)
    assert endpoint.failing_since is None and endpoint.retry_at is None


def test_a_receiver_down_for_a_while_gets_every_event_once_back(session, make_user, settings, clock):
    receiver = Receiver()  # not listening: connection refused
    register(session, receiver, clock=clock)
    plan = find_plan(session, "basic")
    for _ in range(3):
        subscribe(session, make_user(), plan, clock.now, settings)
        session.commit()
    tries = 0
    for wait in webhooks.RETRY_SCHEDULE[:4]:  # down for about two and a half hours
        tries += deliver()["failed"]
        clock.now += wait
    assert tries == 4
    receiver.start()
    try:
        assert deliver()["sent"] == 6
    finally:
        receiver.stop()
    assert receiver.types() == ["subscription.created", "invoice.issued"] * 3
    assert len(set(receiver.ids)) == 6
    assert session.scalar(select(func.count()).where(WebhookDelivery.status == DLV_SUCCEEDED)) == 6


def test_a_rolled_back_change_sends_nothing(session, make_user, settings, receiver, clock):
    register(session, receiver, clock=clock)
    user = make_user()
    subscribe(session, user, find_plan(session, "pro"), clock.now, settings)
    session.rollback()
    assert deliver() == {"dispatched": 0, "sent": 0, "failed": 0, "more": False}
    assert receiver.received == [] and session.scalar(select(func.count()).select_from(OutboundEvent)) == 0


def test_a_test_event_goes_to_one_endpoint_only(session, receiver, clock):
    endpoint = register(session, receiver, ["invoice.paid"], clock)
    other = Receiver().start()
    try:
        register(session, other, clock=clock)
        receiver.secret = endpoint.secret
        webhooks.send_test(session, endpoint, clock.now, actor_id=None)
        session.commit()
        deliver()
    finally:
        other.stop()
    assert receiver.types() == ["webhook.test"] and other.received == []


def test_embedded_mode_delivers_after_the_commit(app, session, make_user, settings, receiver, clock):
    register(session, receiver, clock=clock)
    stop = threading.Event()
    embedded.start(app, scheduler_interval=1, stop=stop)
    try:
        make_user()  # not a sign-up: no event
        subscribe(session, make_user(), find_plan(session, "pro"), clock.now, settings)
        session.commit()  # the commit nudges the in-process worker
        deadline = time.monotonic() + 60  # a generous wait (the machine may be busy), left as soon as both arrive
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
    assert receiver.types() == ["subscription.created", "invoice.issued"]


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://example.com/hooks", True),
        ("http://93.184.215.14:8080/x", True),
        ("ftp://example.com/", False),
        ("javascript:alert(1)", False),
        ("http://127.0.0.1/hooks", False),
        ("http://[::1]/", False),
        ("http://10.1.2.3/", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://user:pw@example.com/", False),
        ("http://localhost/", False),
        ("http://exa mple.com/", False),
        ("http://example.com:99999/", False),
        # IPv6 forms that carry a private IPv4 address: NAT64, 6to4.
        ("http://[64:ff9b::7f00:1]/", False),
        ("http://[64:ff9b::a01:203]/", False),
        ("http://[2002:7f00:1::]/", False),
        ("http://[64:ff9b::5db8:d70e]/", True),
    ],
)
def test_urls_must_be_http_and_public_in_production(url, allowed, monkeypatch):
    monkeypatch.setattr(
        urls.socket,
        "getaddrinfo",
        lambda host, port, **kw: [(0, 0, 0, "", ("93.184.215.14" if "example" in host else "127.0.0.1", port))],
    )
    if allowed:
        assert urls.check(url, allow_private=False) == url
    else:
        with pytest.raises(urls.BadURL):
            urls.check(url, allow_private=False)


def test_loopback_is_allowed_when_configured():
    assert urls.check("http://127.0.0.1:9/hooks", allow_private=True) == "http://127.0.0.1:9/hooks"


def test_the_sender_refuses_a_private_address_at_send_time(session, clock):
    endpoint = webhooks.create_endpoint(session, "http://127.0.0.1:9/x", ["invoice.paid"], "", clock.now, actor_id=None)
    webhooks.send_test(session, endpoint, clock.now, actor_id=None)
    event = session.scalars(select(OutboundEvent)).one()
    outcome = Sender(timeout=1, allow_private=False).post(endpoint, event)
    assert not outcome.ok and "Refused" in (outcome.error or "")
    assert json.loads(webhooks.events.payload(event))["type"] == "webhook.test"
