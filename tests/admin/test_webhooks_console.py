"""The console's outbound webhooks: endpoints registered, edited, disabled and enabled, secrets
shown once, rotated or revealed (audited with the staff member), a test event, deliveries
per endpoint and per event, and a resend."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.billing import events, webhooks
from portal.models import AuditEntry, OutboundEvent, WebhookDelivery, WebhookEndpoint
from tests.conftest import utc

BASE = "/admin/outbound-webhooks"
FORM = {"url": "https://hooks.example.com/billing", "description": "our app", "event_types": ["invoice.paid"]}


@pytest.fixture()
def public_dns(monkeypatch):
    """hooks.example.com resolves to a public address (no network in tests)."""
    from portal.webhooks import urls

    monkeypatch.setattr(urls.socket, "getaddrinfo", lambda host, port, **kw: [(0, 0, 0, "", ("93.184.215.14", port))])


def actions(session, staff) -> list[str]:
    return list(
        session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == staff.id).order_by(AuditEntry.id))
    )


def add(client) -> WebhookEndpoint:
    response = client.post(f"{BASE}/new", data=FORM)
    assert response.status_code == 200, response.text
    return response


def test_visitors_get_the_login_page(client, session):
    response = client.get(f"{BASE}/")
    assert response.status_code == 302 and response.location.startswith("/login?next=")


def test_customers_get_403(client, customer):
    assert client.get(f"{BASE}/").status_code == 403
    assert client.post(f"{BASE}/new", data=FORM).status_code == 403


def test_adding_an_endpoint_shows_its_secret_once_and_is_audited(client, staff, session, public_dns):
    page = client.get(f"{BASE}/")
    assert "No endpoints yet" in page.text
    response = add(client)
    endpoint = session.scalars(select(WebhookEndpoint)).one()
    assert endpoint.secret in response.text and response.headers["Cache-Control"] == "no-store"
    assert endpoint.event_types == ["invoice.paid"] and endpoint.enabled
    assert endpoint.secret not in client.get(f"{BASE}/{endpoint.id}/").text  # only shown when asked
    assert actions(session, staff) == ["create_webhook_endpoint"]


@pytest.mark.parametrize(
    "form, message",
    [
        ({**FORM, "url": "ftp://example.com/x"}, "http:// or https://"),
        ({**FORM, "url": "http://127.0.0.1:8080/hooks"}, "loopback, private or reserved"),
        ({**FORM, "url": ""}, "Give the endpoint"),
        ({**FORM, "event_types": []}, "at least one event"),
        ({**FORM, "event_types": ["invoice.exploded"]}, "is not a valid choice"),
        ({**FORM, "url": "https://hooks.example.com/a b"}, "holds spaces"),
        ({**FORM, "url": "https://" + "a" * 2000 + ".example.com/"}, "Field cannot be longer"),
    ],
)
def test_a_bad_form_is_refused_with_the_reason(client, staff, session, form, message, public_dns, config):
    config["WEBHOOKS_ALLOW_PRIVATE_URLS"] = False  # production's setting
    response = client.post(f"{BASE}/new", data=form)
    assert response.status_code == 422
    assert message in response.text
    assert session.scalars(select(WebhookEndpoint)).all() == []


def test_a_nul_byte_is_a_clear_400(client, staff, session):
    response = client.post(f"{BASE}/new", data={**FORM, "url": "https://hooks.example.com/\x00"})
    assert response.status_code == 400 and session.scalars(select(WebhookEndpoint)).all() == []


def test_loopback_is_accepted_when_the_flag_allows_it(client, staff, session, config):
    config["WEBHOOKS_ALLOW_PRIVATE_URLS"] = True
    add_form = {**FORM, "url": "http://127.0.0.1:8080/hooks"}
    assert client.post(f"{BASE}/new", data=add_form).status_code == 200


def test_edit_disable_enable_rotate_reveal_and_test(client, staff, session, public_dns):
    add(client)
    endpoint = session.scalars(select(WebhookEndpoint)).one()
    first_secret, page = endpoint.secret, f"{BASE}/{endpoint.id}/"
    edited = {**FORM, "url": "https://hooks.example.com/v2", "event_types": ["invoice.paid", "invoice.issued"]}
    assert client.post(f"{page}edit", data=edited).status_code == 303
    session.refresh(endpoint)
    assert endpoint.url.endswith("/v2") and endpoint.event_types == ["invoice.issued", "invoice.paid"]

    assert client.post(f"{page}disable", data={"reason": "receiver being moved"}).status_code == 303
    session.refresh(endpoint)
    assert not endpoint.enabled and endpoint.disabled_reason == "receiver being moved"
    assert "receiver being moved" in client.get(f"{BASE}/").text
    assert client.post(f"{page}enable").status_code == 303
    session.refresh(endpoint)
    assert endpoint.enabled

    rotated = client.post(f"{page}rotate")
    session.refresh(endpoint)
    assert endpoint.secret != first_secret and endpoint.secret in rotated.text
    revealed = client.post(f"{page}reveal")
    assert endpoint.secret in revealed.text and revealed.headers["Cache-Control"] == "no-store"

    assert client.post(f"{page}test").status_code == 303
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert delivery.event.type == "webhook.test" and delivery.endpoint_id == endpoint.id
    assert "webhook.test" in client.get(page).text
    assert actions(session, staff) == [
        "create_webhook_endpoint",
        "edit_webhook_endpoint",
        "disable_webhook_endpoint",
        "enable_webhook_endpoint",
        "rotate_webhook_secret",
        "reveal_webhook_secret",
        "send_test_webhook",
    ]
    assert client.post(f"{page}delete").status_code == 303  # with its deliveries; the events stay
    assert session.scalars(select(WebhookEndpoint)).all() == [] and session.scalars(select(WebhookDelivery)).all() == []
    assert session.scalars(select(OutboundEvent)).one().type == "webhook.test"
    assert actions(session, staff)[-1] == "delete_webhook_endpoint"


def test_deliveries_per_endpoint_and_per_event_and_resend(client, staff, session, public_dns):
    add(client)
    endpoint = session.scalars(select(WebhookEndpoint)).one()
    now = utc(2024, 3, 5, 12)
    events.emit(session, "invoice.paid", {"id": 42}, now)
    events.dispatch(session, now)
    delivery = session.scalars(select(WebhookDelivery)).one()
    webhooks.record(session, endpoint, delivery, webhooks.Outcome(500, "boom"), now)
    session.commit()
    page = client.get(f"{BASE}/{endpoint.id}/?status=pending").text
    assert "invoice.paid" in page and "HTTP 500" in page
    assert "No deliveries with that status" in client.get(f"{BASE}/{endpoint.id}/?status=succeeded").text
    detail = client.get(f"{BASE}/deliveries/{delivery.id}/").text
    assert "boom" in detail and "&#34;id&#34;:42" in detail  # the body sent, escaped
    event = session.scalars(select(OutboundEvent)).one()
    assert endpoint.url in client.get(f"{BASE}/events/{event.id}/").text
    assert "invoice.paid" in client.get(f"{BASE}/events/?type=invoice.paid").text
    assert client.post(f"{BASE}/deliveries/{delivery.id}/resend", data={"back": "event"}).status_code == 303
    session.refresh(delivery)
    assert delivery.attempts == 0 and delivery.next_attempt_at == now
    assert actions(session, staff)[-1] == "resend_webhook"


@pytest.mark.parametrize(
    "path",
    [
        "/99999999/",
        "/99999999999999999999999/",
        "/%C2%B2/",
        "/deliveries/9223372036854775808/",
        "/events/abc/",
    ],
)
def test_unknown_or_hostile_ids_are_404(client, staff, path):
    assert client.get(BASE + path).status_code == 404


def test_an_automatically_disabled_endpoint_is_shown_with_its_reason(client, staff, session):
    endpoint = webhooks.create_endpoint(
        session, "https://x.example.com/h", ["invoice.paid"], "", utc(2024, 3, 1), actor_id=None
    )
    endpoint.failing_since = utc(2024, 2, 1)
    webhooks._disable_failing(session, endpoint, "HTTP 502", utc(2024, 3, 5))
    session.commit()
    page = client.get(f"{BASE}/").text
    assert re.search(r"x\.example\.com/h</strong> is disabled: Disabled automatically", page)
