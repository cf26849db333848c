"""Webhook endpoints and the rules of delivering to them: order, retries, giving up, disabling.

Sending over HTTP is the service's (portal/webhooks/); the rules are here:

- An endpoint gets its deliveries in the order of their events. One worker at a time
  sends to an endpoint (claim_endpoint locks its row, SKIP LOCKED: other workers take
  other endpoints), and after a failed attempt nothing more is sent to it before that
  delivery's next try (`retry_at`): a receiver that is down gets everything, in order,
  once it is back.
- A failed delivery is tried again after RETRY_SCHEDULE (Standard Webhooks' schedule,
  stretched to about three days), then marked failed and the next one goes.
- An endpoint whose every attempt has failed for DISABLE_AFTER is disabled, and staff
  are told (a notice in the outbox to every staff member).

Staff actions take `actor_id` and write their audit entry in the same transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import joinedload

from ..models import (
    DLV_FAILED,
    DLV_PENDING,
    DLV_SUCCEEDED,
    NOTE_STAFF_ALERT,
    DbSession,
    Notification,
    OutboundEvent,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointEvent,
)
from . import audit, events
from .errors import BillingError

# The pause after the n-th failed attempt; after the last, the delivery has failed
# (about 2 days 22 hours after the first try).
RETRY_SCHEDULE: tuple[dt.timedelta, ...] = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
    dt.timedelta(hours=14),
    dt.timedelta(hours=14),
    dt.timedelta(hours=14),
)
DISABLE_AFTER = dt.timedelta(days=3)  # every attempt failing this long disables the endpoint
BODY_KEPT = 1000  # characters of a response body kept in the attempt log
ERROR_KEPT = 500


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: "whsec_" and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _check_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types), key=lambda t: events.EVENT_TYPES.index(t) if t in events.EVENT_TYPES else -1)
    unknown = [t for t in chosen if t not in events.EVENT_TYPES]
    if unknown:
        raise BillingError(f"Unknown event type(s): {', '.join(unknown)}.", "unknown_event_type", 422)
    if not chosen:
        raise BillingError("Choose at least one event to send.", "no_event_types", 422)
    return chosen


def _set_types(endpoint: WebhookEndpoint, event_types: list[str]) -> None:
    keep = {s.event_type: s for s in endpoint.subscriptions}
    endpoint.subscriptions = [keep.get(t) or WebhookEndpointEvent(event_type=t) for t in event_types]


def create_endpoint(
    session: DbSession,
    url: str,
    event_types: Iterable[str],
    description: str,
    now: dt.datetime,
    *,
    actor_id: int | None,
) -> WebhookEndpoint:
    """A new enabled endpoint with a fresh secret. `url` has been checked by the caller
    (portal/webhooks/urls.py: the scheme, and where it points)."""
    types = _check_types(event_types)
    endpoint = WebhookEndpoint(
        url=url, description=description.strip(), secret=new_secret(), enabled=True, created_at=now, updated_at=now
    )
    _set_types(endpoint, types)
    session.add(endpoint)
    session.flush()
    audit.record(session, actor_id, "create_webhook_endpoint", endpoint, f"{url} ({', '.join(types)})", now)
    session.flush()
    return endpoint


def update_endpoint(
    session: DbSession,
    endpoint: WebhookEndpoint,
    url: str,
    event_types: Iterable[str],
    description: str,
    now: dt.datetime,
    *,
    actor_id: int | None,
) -> None:
    types = _check_types(event_types)
    endpoint.url, endpoint.description, endpoint.updated_at = url, description.strip(), now
    _set_types(endpoint, types)
    audit.record(session, actor_id, "edit_webhook_endpoint", endpoint, f"{url} ({', '.join(types)})", now)
    session.flush()


def rotate_secret(session: DbSession, endpoint: WebhookEndpoint, now: dt.datetime, *, actor_id: int | None) -> str:
    """A new secret for the endpoint; deliveries from now on are signed with it."""
    endpoint.secret, endpoint.updated_at = new_secret(), now
    audit.record(session, actor_id, "rotate_webhook_secret", endpoint, now=now)
    session.flush()
    return endpoint.secret


def reveal_secret(session: DbSession, endpoint: WebhookEndpoint, now: dt.datetime, *, actor_id: int | None) -> str:
    """The secret, shown to a staff member: who looked, and when, is in the audit log."""
    audit.record(session, actor_id, "reveal_webhook_secret", endpoint, now=now)
    session.flush()
    return endpoint.secret


def disable(
    session: DbSession, endpoint: WebhookEndpoint, reason: str, now: dt.datetime, *, actor_id: int | None
) -> None:
    """Stop sending to the endpoint; what is pending waits until it is enabled again."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:500], now
    endpoint.updated_at = now
    audit.record(session, actor_id, "disable_webhook_endpoint", endpoint, reason, now)
    session.flush()


def enable(session: DbSession, endpoint: WebhookEndpoint, now: dt.datetime, *, actor_id: int | None) -> None:
    """Send again, starting with what waited; the failure clock starts afresh."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
    endpoint.failing_since = endpoint.retry_at = None
    endpoint.updated_at = now
    # What waited goes now, not after the pause its last failure had set.
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == DLV_PENDING,
            WebhookDelivery.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, actor_id, "enable_webhook_endpoint", endpoint, now=now)
    session.flush()


def delete_endpoint(session: DbSession, endpoint: WebhookEndpoint, now: dt.datetime, *, actor_id: int | None) -> None:
    """Remove the endpoint and its deliveries (the events stay, for other endpoints)."""
    audit.record(session, actor_id, "delete_webhook_endpoint", endpoint, endpoint.url, now)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def resend(session: DbSession, delivery: WebhookDelivery, now: dt.datetime, *, actor_id: int | None) -> None:
    """Send a delivery again now (a new series of tries), whatever became of it."""
    delivery.status, delivery.next_attempt_at, delivery.attempts = DLV_PENDING, now, 0
    delivery.endpoint.retry_at = None  # staff asked for now: no waiting out an earlier failure
    audit.record(session, actor_id, "resend_webhook", delivery, f"{delivery.event.type} {delivery.event.msg_id}", now)
    session.flush()


def send_test(
    session: DbSession, endpoint: WebhookEndpoint, now: dt.datetime, *, actor_id: int | None
) -> WebhookDelivery:
    """A webhook.test event, to this endpoint only."""
    event = OutboundEvent(
        type=events.TEST_EVENT,
        data=events.to_json({"endpoint_id": endpoint.id, "message": "A test event sent from the staff console."}),
        created_at=now,
        dispatched_at=now,
    )
    session.add(event)
    session.flush()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id, event_id=event.id, status=DLV_PENDING, attempts=0, next_attempt_at=now, created_at=now
    )
    session.add(delivery)
    session.flush()
    audit.record(session, actor_id, "send_test_webhook", endpoint, event.msg_id, now)
    session.info[events.EMITTED] = True
    session.flush()
    return delivery


# --- delivering ---


def claim_endpoint(session: DbSession, now: dt.datetime, skip: Iterable[int] = ()) -> WebhookEndpoint | None:
    """An enabled endpoint with a delivery due and no failure to wait out, row-locked
    (FOR NO KEY UPDATE SKIP LOCKED): no other worker sends to it until the caller commits."""
    due = exists().where(
        WebhookDelivery.endpoint_id == WebhookEndpoint.id,
        WebhookDelivery.status == DLV_PENDING,
        WebhookDelivery.next_attempt_at <= now,
    )
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.enabled,
        or_(WebhookEndpoint.retry_at.is_(None), WebhookEndpoint.retry_at <= now),
        due,
    )
    skipped = list(skip)
    if skipped:
        query = query.where(WebhookEndpoint.id.not_in(skipped))
    return session.scalar(
        query.order_by(WebhookEndpoint.id)
        .limit(1)
        .with_for_update(skip_locked=True, key_share=True)
        .execution_options(populate_existing=True)
    )


def due_deliveries(
    session: DbSession, endpoint: WebhookEndpoint, now: dt.datetime, limit: int = 100
) -> Sequence[WebhookDelivery]:
    """The endpoint's next deliveries in the order of their events, up to the first not yet due."""
    pending = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == DLV_PENDING)
        .order_by(WebhookDelivery.event_id)
        .limit(limit)
        .options(joinedload(WebhookDelivery.event))
    ).all()
    due = []
    for delivery in pending:
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            break
        due.append(delivery)
    return due


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a 2xx is a success; anything else, or no answer, a failure."""

    status_code: int | None
    body: str = ""
    error: str | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record(
    session: DbSession, endpoint: WebhookEndpoint, delivery: WebhookDelivery, outcome: Outcome, now: dt.datetime
) -> None:
    """Log an attempt and decide what follows: done, tried again later, or given up."""
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.response_code = now, outcome.status_code
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            ok=outcome.ok,
            response_code=outcome.status_code,
            response_body=outcome.body[:BODY_KEPT],
            error=outcome.error[:ERROR_KEPT] if outcome.error else None,
            duration_ms=outcome.duration_ms,
        )
    )
    if outcome.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.error = (
            DLV_SUCCEEDED,
            now,
            None,
            None,
        )
        endpoint.failing_since = endpoint.retry_at = None
        return
    delivery.error = (outcome.error or f"HTTP {outcome.status_code}")[:ERROR_KEPT]
    if delivery.attempts > len(RETRY_SCHEDULE):
        delivery.status, delivery.next_attempt_at = DLV_FAILED, None
        endpoint.retry_at = None  # the next delivery goes now
    else:
        delivery.next_attempt_at = endpoint.retry_at = now + RETRY_SCHEDULE[delivery.attempts - 1]
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    elif now - endpoint.failing_since >= DISABLE_AFTER:
        _disable_failing(session, endpoint, delivery.error, now)


def _disable_failing(session: DbSession, endpoint: WebhookEndpoint, error: str, now: dt.datetime) -> None:
    assert endpoint.failing_since is not None
    days = (now - endpoint.failing_since).days
    reason = (
        f"Disabled automatically: every delivery failed for {days} days "
        f"(since {endpoint.failing_since:%b %-d, %Y %H:%M} UTC). Last error: {error}"
    )
    disable(session, endpoint, reason, now, actor_id=None)
    body = (
        f"The webhook endpoint {endpoint.url} (#{endpoint.id}) was disabled.\n\n{reason}\n\n"
        "Its undelivered events are kept: enable the endpoint in the staff console "
        "(Webhooks) once the receiver works again, and they are sent in order.\n"
    )
    for staff_id in session.scalars(select(User.id).where(User.is_staff)):
        session.add(
            Notification(
                user_id=staff_id,
                kind=NOTE_STAFF_ALERT,
                step=0,
                subject=f"Webhook endpoint disabled: {endpoint.url}"[:255],
                body=body,
                created_at=now,
            )
        )
