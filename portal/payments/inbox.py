"""The payments inbox: each verified webhook event stored once, then marked processed or failed.

A provider delivers an event at least once, sometimes twice at the same moment, and
retries while it is answered with an error. The event's unique id decides what a
delivery is: new (store it, process it), a repeat of one already processed (a
duplicate: do nothing), or a retry of one that failed with a retryable error (process
it again). Functions flush; the caller's unit of work commits.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..models import DbSession, WebhookEvent


def receive(
    session: DbSession, event_id: str, event_type: str, payload: dict[str, Any], now: dt.datetime
) -> WebhookEvent | None:
    """The stored event to process now, or None for a duplicate: already processed, or
    stored at this moment by a concurrent delivery of the same event."""
    record = session.scalar(select(WebhookEvent).where(WebhookEvent.provider_event_id == event_id))
    if record is not None:
        return None if record.processed_at is not None else record
    record = WebhookEvent(
        provider_event_id=event_id,
        type=event_type,
        payload=json.dumps(payload, indent=2, sort_keys=True),
        received_at=now,
    )
    try:
        # The unique event id is the last word: of two deliveries at once, the second
        # waits here for the first and then fails; the savepoint undoes only its insert.
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return None
    return record


def mark_processed(session: DbSession, record: WebhookEvent, now: dt.datetime) -> None:
    """The event is handled: later deliveries of it are duplicates."""
    record.processed_at, record.error = now, None
    session.flush()


def record_error(session: DbSession, record: WebhookEvent, message: str, final: bool, now: dt.datetime) -> None:
    """Keep the event's error for staff. A final error (retrying cannot help) closes the
    event; a retryable one leaves it open for the provider's next delivery."""
    record.error = message
    if final:
        record.processed_at = now
    session.flush()
