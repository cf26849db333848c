"""Outbound events: what the company's own application is told, recorded as an outbox.

emit() adds an event row in the caller's transaction: a change rolled back takes its
event with it, and a committed change keeps its event however long Redis or the
workers are away. dispatch() later fans undispatched events out into one delivery per
enabled endpoint subscribed to the type (portal/billing/webhooks.py sends them).
An event is recorded only while some endpoint (enabled or not) subscribes to its type:
with none, nobody could ever receive it.

Where the billing run changes many rows at once (invoices issued, overdue, subscriptions
past due or ended), the events are written the same way: one INSERT ... SELECT per
chunk, deduplicated by the event's key, never a row at a time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, literal, null, select, update

from ..models import (
    INV_OVERDUE,
    KIND_PERIOD,
    SUB_CANCELED,
    SUB_PAST_DUE,
    DbSession,
    Invoice,
    OutboundEvent,
    Plan,
    Subscription,
    User,
    UTCDateTime,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointEvent,
)
from .sql import const, insert_ignoring_duplicates, json_bool_sql, json_object_sql, rows_changed

CUSTOMER_CREATED = "customer.created"
SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_CANCELED = "subscription.canceled"
SUBSCRIPTION_PAST_DUE = "subscription.past_due"
INVOICE_ISSUED = "invoice.issued"
INVOICE_PAID = "invoice.paid"
INVOICE_OVERDUE = "invoice.overdue"
INVOICE_VOIDED = "invoice.voided"
INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
REFUND_CREATED = "refund.created"

# Every type an endpoint can subscribe to, in the order the console lists them.
EVENT_TYPES = (
    CUSTOMER_CREATED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_PAST_DUE,
    INVOICE_ISSUED,
    INVOICE_PAID,
    INVOICE_OVERDUE,
    INVOICE_VOIDED,
    INVOICE_PAYMENT_FAILED,
    REFUND_CREATED,
)
TEST_EVENT = "webhook.test"  # sent to one endpoint from the console, whatever it subscribes to

# session.info key: this transaction recorded events (the app asks a worker to send them
# once it commits; the periodic sweep sends them anyway).
EMITTED = "portal.events_emitted"

E = OutboundEvent.__table__
D = WebhookDelivery.__table__
EE = WebhookEndpointEvent.__table__
EP = WebhookEndpoint.__table__
I = Invoice.__table__  # noqa: E741
S = Subscription.__table__
P = Plan.__table__

EVENT_COLUMNS = ["type", "data", "key", "created_at"]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, default=_plain, separators=(",", ":"), sort_keys=True)


def emit(
    session: DbSession, event_type: str, data: Mapping[str, Any], now: dt.datetime, *, key: str | None = None
) -> bool:
    """Record an event in the caller's transaction; the caller commits.

    `key` names an event that happens once per object ("invoice.paid:42"): a second
    emit with the same key records nothing (False), as does one nobody subscribes to.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    row = select(literal(event_type), literal(to_json(data)), literal(key, E.c.key.type), literal(now, UTCDateTime))
    return _insert_events(session, row) != 0


def payload(event: OutboundEvent) -> str:
    """The body sent, in the Standard Webhooks shape: {"type", "timestamp", "data"}."""
    stamp = event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return f'{{"type":{json.dumps(event.type)},"timestamp":"{stamp}","data":{event.data}}}'


# --- what each kind of object says about itself (one definition, in Python and in SQL) ---


def customer_data(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "created_at": user.created_at}


def subscription_data(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "customer_id": sub.user_id,
        "plan": sub.plan.code,
        "pending_plan": sub.pending_plan.code if sub.pending_plan else None,
        "status": sub.status,
        "current_period_start": sub.current_period_start,
        "current_period_end": sub.current_period_end,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "paused": sub.paused_at is not None,
    }


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "customer_id": invoice.user_id,
        "subscription_id": invoice.subscription_id,
        "kind": invoice.kind,
        "status": invoice.status,
        "subtotal": invoice.subtotal_cents,
        "tax": invoice.tax_cents,
        "total": invoice.total,
        "currency": invoice.currency,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "due_date": invoice.due_date,
    }


def _invoice_sql(status: ColumnElement[Any] | None = None, c: Any = I.c) -> ColumnElement[str]:
    """invoice_data() of each invoice row (of `c`: the table's columns, or a CTE's), built by the database."""
    return json_object_sql(
        const("id"), c.id,
        const("number"), c.number,
        const("customer_id"), c.user_id,
        const("subscription_id"), c.subscription_id,
        const("kind"), c.kind,
        const("status"), c.status if status is None else status,
        const("subtotal"), c.subtotal_cents,
        const("tax"), c.tax_cents,
        const("total"), c.total,
        const("currency"), c.currency,
        const("period_start"), c.period_start,
        const("period_end"), c.period_end,
        const("due_date"), c.due_date,
    )  # fmt: skip


def _subscription_sql(status: ColumnElement[Any]) -> ColumnElement[str]:
    """subscription_data() of each subscription row (joined with its plan), built by the database."""
    return json_object_sql(
        const("id"), S.c.id,
        const("customer_id"), S.c.user_id,
        const("plan"), P.c.code,
        const("pending_plan"), null(),
        const("status"), status,
        const("current_period_start"), S.c.current_period_start,
        const("current_period_end"), S.c.current_period_end,
        const("cancel_at_period_end"), json_bool_sql(S.c.cancel_at_period_end),
        const("paused"), json_bool_sql(S.c.paused_at.isnot(None)),
    )  # fmt: skip


def _key(event_type: str, object_id: ColumnElement[Any], suffix: str = "") -> ColumnElement[str]:
    """The event's key ("invoice.issued:42"), in SQL."""
    key = literal(event_type + ":").concat(object_id)
    return key.concat(literal(suffix)) if suffix else key


def _insert_events(session: DbSession, rows: Select[Any]) -> int:
    """INSERT the events `rows` selects (type, data, key, created_at) if an endpoint subscribes to
    their type: an event nobody listens for would never be delivered, so it is not recorded
    (a big run issues 100,000 invoices; their events cost as much again, for nobody)."""
    session.flush()  # Core statements do not autoflush pending ORM changes
    listened = exists().where(EE.c.event_type == rows.selected_columns[0])
    written = rows_changed(
        session, insert_ignoring_duplicates(session, E).from_select(EVENT_COLUMNS, rows.where(listened))
    )
    if written:
        session.info[EMITTED] = True
    return max(written, 0)


def emit_issued(session: DbSession, lo: int, hi: int, now: dt.datetime) -> int:
    """invoice.issued for the period invoices the billing run issued at `now` to subscriptions lo..hi."""
    return _insert_events(
        session,
        select(
            literal(INVOICE_ISSUED),
            _invoice_sql(),
            _key(INVOICE_ISSUED, I.c.id),
            literal(now, UTCDateTime),
        )
        .where(
            I.c.subscription_id.between(lo, hi),
            I.c.kind == const(KIND_PERIOD),
            I.c.issued_at == literal(now, UTCDateTime),
        )
        .order_by(I.c.id),
    )


def emit_becoming_overdue(session: DbSession, becoming: ColumnElement[bool], now: dt.datetime) -> int:
    """invoice.overdue for the invoices `becoming` overdue (called before the UPDATE that marks them)."""
    return _insert_events(
        session,
        select(
            literal(INVOICE_OVERDUE),
            _invoice_sql(literal(INV_OVERDUE)),
            _key(INVOICE_OVERDUE, I.c.id),
            literal(now, UTCDateTime),
        )
        .where(becoming)
        .order_by(I.c.id),
    )


def emit_becoming_past_due(session: DbSession, becoming: ColumnElement[bool], now: dt.datetime) -> int:
    """subscription.past_due for the subscriptions `becoming` past due (before the UPDATE); once a day at most."""
    return _insert_events(
        session,
        select(
            literal(SUBSCRIPTION_PAST_DUE),
            _subscription_sql(literal(SUB_PAST_DUE)),
            _key(SUBSCRIPTION_PAST_DUE, S.c.id, ":" + now.date().isoformat()),
            literal(now, UTCDateTime),
        )
        .select_from(S.join(P, P.c.id == S.c.plan_id))
        .where(becoming)
        .order_by(S.c.id),
    )


def emit_ending(session: DbSession, ending: ColumnElement[bool], now: dt.datetime) -> int:
    """subscription.canceled for the subscriptions the run ends at period end (before the UPDATE)."""
    return _insert_events(
        session,
        select(
            literal(SUBSCRIPTION_CANCELED),
            _subscription_sql(literal(SUB_CANCELED)),
            _key(SUBSCRIPTION_CANCELED, S.c.id),
            literal(now, UTCDateTime),
        )
        .select_from(S.join(P, P.c.id == S.c.plan_id))
        .where(ending)
        .order_by(S.c.id),
    )


def emit_paid(session: DbSession, paid: ColumnElement[bool], now: dt.datetime) -> int:
    """invoice.paid for the invoices `paid` (after the UPDATE that marks them): the same
    data and key as emit(INVOICE_PAID, invoice_data(invoice)) of each, in one statement."""
    return _insert_events(
        session,
        select(
            literal(INVOICE_PAID),
            _invoice_sql(),
            _key(INVOICE_PAID, I.c.id),
            literal(now, UTCDateTime),
        )
        .where(paid)
        .order_by(I.c.id),
    )


# --- fan-out ---


def dispatch(session: DbSession, now: dt.datetime, limit: int = 2000) -> int:
    """Fan the oldest undispatched events out into deliveries; how many events were taken.

    The events are locked with SKIP LOCKED, so concurrent workers take different ones;
    the delivery's unique (endpoint, event) makes a repeat harmless. An event no enabled
    endpoint subscribes to is simply marked dispatched.
    """
    ids = list(
        session.scalars(
            select(E.c.id)
            .where(E.c.dispatched_at.is_(None))
            .order_by(E.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return 0
    taken = E.c.id.in_(ids)
    rows = (
        select(
            EE.c.endpoint_id,
            E.c.id,
            literal("pending"),
            literal(0),
            literal(now, UTCDateTime),
            literal(now, UTCDateTime),
        )
        .select_from(E.join(EE, EE.c.event_type == E.c.type).join(EP, and_(EP.c.id == EE.c.endpoint_id, EP.c.enabled)))
        .where(taken)
        .order_by(E.c.id, EE.c.endpoint_id)
    )
    rows_changed(
        session,
        insert_ignoring_duplicates(session, D).from_select(
            ["endpoint_id", "event_id", "status", "attempts", "next_attempt_at", "created_at"], rows
        ),
    )
    rows_changed(session, update(E).where(taken).values(dispatched_at=now))
    return len(ids)
