"""Automatic collection: saved cards, off-session charges, their retries, and what the
customer is told about them.

The order of a charge is the point (portal/payments/collect.py follows it):
1. `begin_attempt` records the attempt with its idempotency key; the caller COMMITS it;
2. the provider is called with that key (a repeat of the call, after a crash or by a
   retried job, is the same charge: the provider answers it once);
3. `record_outcome` records what the provider said, in a transaction of its own.
An attempt left `pending` by a crash between 1 and 3 is resumed (`stale_attempts`) with
the same key, never started again with a new one.

Retries and reminders are one schedule: a failed charge is tried again
`settings.retry_days` days after the first failure; after the last one the subscription
is past_due and, if `settings.cancel_after_days` is set, ends that many days later.
Plain functions taking the session and `now`; they flush, the caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import selectinload

from ..models import (
    ATT_ACTION,
    ATT_FAILED,
    ATT_PENDING,
    ATT_SUCCEEDED,
    COLLECT_AUTO,
    COLLECT_SEND,
    INV_PAID,
    INV_PAYABLE,
    NOTE_ACTION_REQUIRED,
    NOTE_CARD_EXPIRING,
    NOTE_CHARGE_FAILED,
    NOTE_RECEIPT,
    PAY_SUCCEEDED,
    SUB_ACTIVE,
    SUB_CANCELED,
    SUB_LIVE,
    SUB_PAST_DUE,
    DbSession,
    Invoice,
    Notification,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    Subscription,
    User,
    UTCDateTime,
)
from . import audit, dunning, events
from .checkouts import PAID, Checkout
from .errors import BillingError
from .invoices import fulfil, locked
from .settings import BillingSettings

# The outcome of a call to the provider.
SUCCEEDED, FAILED, REQUIRES_ACTION, PENDING = ATT_SUCCEEDED, ATT_FAILED, ATT_ACTION, ATT_PENDING
UNSUCCESSFUL = (ATT_FAILED, ATT_ACTION)

# A pending attempt older than this was cut off (a crash, a killed worker): resume it.
STALE_AFTER = dt.timedelta(minutes=10)
# A forced attempt (staff's "Charge now" pressed twice, ten times at once) does not charge the
# card that was tried less than this long ago: one click acts once, a bank sees no burst of declines.
FORCE_GAP = dt.timedelta(minutes=1)

# The provider's failure codes in words a customer understands.
REASONS = {
    "card_declined": "your bank declined the card",
    "generic_decline": "your bank declined the card",
    "do_not_honor": "your bank declined the card",
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "incorrect_cvc": "the card's security code was not accepted",
    "lost_card": "the card was reported lost",
    "stolen_card": "the card was reported stolen",
    "authentication_required": "your bank asks you to confirm this payment",
    "processing_error": "the card could not be processed",
    "no_card": "no card is saved",
}


def plain_reason(code: str | None) -> str:
    return REASONS.get(code or "", "the card could not be charged")


@dataclass(frozen=True)
class ChargeOutcome:
    """What the provider answered to one off-session charge."""

    status: str  # SUCCEEDED | FAILED | REQUIRES_ACTION | PENDING (still processing: a webhook settles it)
    provider: str  # 'stripe' | 'demo'
    provider_ref: str = ""  # the payment (intent) id
    failure_code: str = ""
    action_url: str = ""


@dataclass(frozen=True)
class CardDetails:
    """A card as the provider describes it after a setup."""

    provider: str
    ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


# -- saved cards -----------------------------------------------------------------------


def default_card(session: DbSession, user_id: int) -> PaymentMethod | None:
    return session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.user_id == user_id, PaymentMethod.is_default, PaymentMethod.removed_at.is_(None)
        )
    )


def _live_subscription(session: DbSession, user_id: int) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(Subscription.user_id == user_id, Subscription.status.in_(SUB_LIVE))
    )


def _lock_customer(session: DbSession, user_id: int) -> None:
    """Card changes of one customer, one at a time: the same set-up submitted twice at once
    (two tabs, a webhook and the return page) then finds the first's card instead of
    racing it to the one default (uq_payment_methods_default)."""
    # FOR NO KEY UPDATE: it serialises these as FOR UPDATE would, and leaves alone the foreign-key
    # checks (FOR KEY SHARE) of a billing chunk holding this customer's subscription (no deadlock).
    session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


def save_card(session: DbSession, user_id: int, card: CardDetails, now: dt.datetime) -> PaymentMethod:
    """The card becomes the customer's default and their subscription is charged
    automatically from now on. Saving the same card again (a webhook after the return
    page) updates it; it is never a second row."""
    _lock_customer(session, user_id)
    existing = session.scalar(select(PaymentMethod).where(PaymentMethod.provider_ref == card.ref))
    if existing is not None and existing.user_id != user_id:
        raise BillingError("This card belongs to another customer.", "foreign_card")
    current = default_card(session, user_id)
    if current is not None and current is not existing:
        current.is_default = False
        session.flush()  # one default at a time (uq_payment_methods_default)
    pm = existing or PaymentMethod(user_id=user_id, provider=card.provider, provider_ref=card.ref, created_at=now)
    pm.brand, pm.last4, pm.exp_month, pm.exp_year = card.brand or "card", card.last4, card.exp_month, card.exp_year
    pm.is_default, pm.removed_at = True, None
    session.add(pm)
    sub = _live_subscription(session, user_id)
    if sub is not None:
        sub.collection_method = COLLECT_AUTO
    session.flush()
    return pm


def remove_card(session: DbSession, user_id: int, pm_id: int, now: dt.datetime) -> PaymentMethod | None:
    """Remove a saved card of this customer (None if it is not theirs or already gone); with
    no card left, the customer pays each invoice again."""
    _lock_customer(session, user_id)
    pm = session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.id == pm_id, PaymentMethod.user_id == user_id, PaymentMethod.removed_at.is_(None)
        )
    )
    if pm is None:
        return None
    pm.removed_at, pm.is_default = now, False
    session.flush()
    if default_card(session, user_id) is None:
        sub = _live_subscription(session, user_id)
        if sub is not None:
            sub.collection_method = COLLECT_SEND
    session.flush()
    return pm


def forget_card(session: DbSession, provider_ref: str, now: dt.datetime) -> bool:
    """The provider says the card was detached (removed elsewhere): never charge it again."""
    pm = session.scalar(
        select(PaymentMethod).where(PaymentMethod.provider_ref == provider_ref, PaymentMethod.removed_at.is_(None))
    )
    return pm is not None and remove_card(session, pm.user_id, pm.id, now) is not None


def set_collection_method(
    session: DbSession, sub: Subscription, method: str, now: dt.datetime, actor_id: int | None = None
) -> None:
    """Staff switch how a subscription is collected (audited)."""
    if method not in (COLLECT_AUTO, COLLECT_SEND):
        raise BillingError("Unknown collection method.", "bad_method")
    if method == COLLECT_AUTO and default_card(session, sub.user_id) is None:
        raise BillingError("The customer has no saved card to charge.", "no_card")
    before = sub.collection_method
    sub.collection_method = method
    audit.record(session, actor_id, "collection_method", sub, f"{before} -> {method}", now=now)
    session.flush()


# -- which invoices are charged when ---------------------------------------------------

A = PaymentAttempt.__table__
I = Invoice.__table__  # noqa: E741
S = Subscription.__table__
PM = PaymentMethod.__table__


def _blocking(now: dt.datetime) -> Exists:
    """An attempt that says "not now": one in flight or done, or a failure whose retry is
    later (or that was the last)."""
    return exists().where(
        A.c.invoice_id == I.c.id,
        or_(
            A.c.status.in_((ATT_PENDING, ATT_SUCCEEDED)),
            A.c.next_attempt_at.is_(None),
            A.c.next_attempt_at > now,
        ),
    )


def _chargeable() -> Select[tuple[int]]:
    """Payable invoices of automatically collected subscriptions whose customer has a card."""
    return (
        select(I.c.id)
        .join(S, S.c.id == I.c.subscription_id)
        .join(PM, and_(PM.c.user_id == I.c.user_id, PM.c.is_default, PM.c.removed_at.is_(None)))
        .where(I.c.status.in_(INV_PAYABLE), S.c.collection_method == COLLECT_AUTO, S.c.status.in_(SUB_LIVE))
    )


def due_invoice_ids(session: DbSession, now: dt.datetime) -> list[int]:
    """The invoices to charge at `now`: never tried, or whose retry day has come."""
    session.flush()
    return list(session.scalars(_chargeable().where(~_blocking(now)).order_by(I.c.id)))


def stale_attempts(session: DbSession, now: dt.datetime) -> list[int]:
    """Attempts recorded but never answered (cut off by a crash): to resume with their own key."""
    return list(
        session.scalars(
            select(A.c.id).where(A.c.status == ATT_PENDING, A.c.created_at <= now - STALE_AFTER).order_by(A.c.id)
        )
    )


def retry_now_ids(session: DbSession, user_id: int) -> list[int]:
    """A new card: the customer's unpaid invoices to charge at once (never tried, or failed
    before), whatever their retry day."""
    session.flush()
    settled = exists().where(A.c.invoice_id == I.c.id, A.c.status.in_((ATT_PENDING, ATT_SUCCEEDED)))
    return list(session.scalars(_chargeable().where(I.c.user_id == user_id, ~settled).order_by(I.c.id)))


def begin_attempt(
    session: DbSession, invoice_id: int, now: dt.datetime, *, force: bool = False, actor_id: int | None = None
) -> PaymentAttempt | None:
    """Record the next attempt of a charge (the caller commits it BEFORE calling the provider);
    None when there is nothing to charge: paid meanwhile, no card, an attempt in flight, or
    (unless `force`: staff's "Charge now", a new card) its retry day has not come."""
    invoice = locked(session, invoice_id)
    if invoice is None or invoice.status not in INV_PAYABLE or invoice.subscription_id is None:
        return None
    sub = session.get(Subscription, invoice.subscription_id)
    card = default_card(session, invoice.user_id)
    if card is None or sub is None or sub.status not in SUB_LIVE:
        return None
    if not force and sub.collection_method != COLLECT_AUTO:
        return None
    attempts = list(
        session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice_id).order_by(PaymentAttempt.attempt)
        )
    )
    if any(a.status in (ATT_PENDING, ATT_SUCCEEDED) for a in attempts):
        return None
    if attempts and not force:
        last = attempts[-1]
        if last.next_attempt_at is None or last.next_attempt_at > now:
            return None
    if attempts and force:
        last = attempts[-1]
        if last.payment_method_id == card.id and last.created_at > now - FORCE_GAP:
            return None
    number = (attempts[-1].attempt if attempts else 0) + 1
    attempt = PaymentAttempt(
        invoice_id=invoice_id,
        attempt=number,
        idempotency_key=f"invoice-{invoice_id}-attempt-{number}",
        payment_method_id=card.id,
        amount=invoice.amount_due,
        currency=invoice.currency,
        status=ATT_PENDING,
        created_at=now,
    )
    session.add(attempt)
    if actor_id is not None:  # staff's "Charge now"
        audit.record(session, actor_id, "charge_now", invoice, f"attempt {number}", now=now)
    session.flush()
    return attempt


def _amount_due() -> ColumnElement[Any]:
    """Invoice.amount_due of a payable invoice (no payment yet), in SQL: what a charge asks for."""
    return I.c.total - I.c.credited_cents - I.c.credit_applied_cents


def next_attempt_at(
    session: DbSession, attempt: PaymentAttempt, now: dt.datetime, settings: BillingSettings
) -> dt.datetime | None:
    """When a failed charge is tried again: `retry_days` after the day of the first failure,
    at the start of that day (the day's run, whatever its hour, picks it up); None after the last.

    A retry whose day has passed unrun (the runs stopped for a while) is not dropped: it
    happens on the next day, so the customer always gets every retry the settings promise."""
    failures = session.scalar(
        select(func.count()).where(
            A.c.invoice_id == attempt.invoice_id, A.c.status.in_(UNSUCCESSFUL), A.c.id != attempt.id
        )
    )
    first = session.scalar(
        select(func.min(A.c.finished_at)).where(
            A.c.invoice_id == attempt.invoice_id, A.c.status.in_(UNSUCCESSFUL), A.c.id != attempt.id
        )
    )
    first_day = (first or now).date()
    days = sorted(settings.retry_days)
    if (failures or 0) >= len(days):
        return None
    day = max(first_day + dt.timedelta(days=days[failures or 0]), now.date() + dt.timedelta(days=1))
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def record_outcome(
    session: DbSession, attempt_id: int, outcome: ChargeOutcome, now: dt.datetime, settings: BillingSettings
) -> PaymentAttempt | None:
    """Record what the provider answered. Repeats are harmless: a succeeded attempt never
    changes again, and the money is recorded once (Payment.provider_ref is unique); money
    taken for an invoice paid another way meanwhile is flagged for a refund by fulfil()."""
    attempt = session.get(PaymentAttempt, attempt_id, populate_existing=True, with_for_update=True)
    if attempt is None or attempt.status == ATT_SUCCEEDED:
        return attempt
    if outcome.provider_ref:
        attempt.provider_ref = outcome.provider_ref
    if outcome.status == PENDING:
        session.flush()
        return attempt
    if outcome.status == SUCCEEDED:
        attempt.status, attempt.finished_at, attempt.next_attempt_at = ATT_SUCCEEDED, now, None
        attempt.failure_code = attempt.failure_reason = attempt.action_url = None
        session.flush()
        ref = outcome.provider_ref or f"{outcome.provider}_{attempt.idempotency_key}"
        fulfil(
            session,
            Checkout(outcome.provider, ref, attempt.invoice_id, attempt.amount, attempt.currency, PAID),
            now,
            settings,
        )
        return attempt
    if attempt.status in UNSUCCESSFUL:
        return attempt  # already recorded (a webhook and the caller both report it)
    attempt.status = ATT_ACTION if outcome.status == REQUIRES_ACTION else ATT_FAILED
    attempt.failure_code = (
        outcome.failure_code or ("authentication_required" if attempt.status == ATT_ACTION else "card_declined")
    )[:64]
    attempt.failure_reason = plain_reason(attempt.failure_code)
    attempt.action_url = outcome.action_url[:2000] or None
    attempt.finished_at = now
    attempt.next_attempt_at = next_attempt_at(session, attempt, now, settings)
    invoice = session.get(Invoice, attempt.invoice_id)
    assert invoice is not None
    kind = NOTE_ACTION_REQUIRED if attempt.status == ATT_ACTION else NOTE_CHARGE_FAILED
    session.add(
        Notification(user_id=invoice.user_id, invoice_id=invoice.id, kind=kind, step=attempt.attempt, created_at=now)
    )
    events.emit(
        session,
        events.INVOICE_PAYMENT_FAILED,
        {
            **events.invoice_data(invoice),
            "attempt": attempt.attempt,
            "failure_code": attempt.failure_code,
            "failure_reason": attempt.failure_reason,
            "next_attempt_at": attempt.next_attempt_at,
        },
        now,
        key=f"{events.INVOICE_PAYMENT_FAILED}:{attempt.id}",
    )
    if attempt.next_attempt_at is None and invoice.status in INV_PAYABLE and invoice.subscription_id is not None:
        # The last retry failed: the dunning rule takes over.
        becoming = and_(S.c.id == invoice.subscription_id, S.c.status == SUB_ACTIVE)
        events.emit_becoming_past_due(session, becoming, now)
        session.execute(update(S).where(becoming).values(status=SUB_PAST_DUE))
    session.flush()
    return attempt


# -- a chunk of charges at once (the payments queue) -------------------------------------


@dataclass(frozen=True)
class PendingCharge:
    """A recorded attempt and what the provider is sent for it."""

    attempt_id: int
    invoice_id: int
    key: str
    amount: int
    currency: str
    card_ref: str
    customer_ref: str


U = User.__table__


def begin_attempts(session: DbSession, invoice_ids: list[int], now: dt.datetime) -> list[PendingCharge]:
    """begin_attempt() of each of these invoices (without `force`), in a few set-based
    statements: the invoices are locked, then one INSERT ... SELECT records the next attempt
    of each one due at `now` (payable, collected automatically from a saved card, none in
    flight or succeeded, never tried or its retry day come), with its own idempotency key.
    The caller COMMITS them before calling the provider for any."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return []
    session.flush()
    # The same lock, in one order, as begin_attempt and fulfil take one invoice at a time.
    session.execute(select(I.c.id).where(I.c.id.in_(ids)).order_by(I.c.id).with_for_update())
    tried = (
        select(A.c.invoice_id, func.max(A.c.attempt).label("n"))
        .where(A.c.invoice_id.in_(ids))
        .group_by(A.c.invoice_id)
        .subquery("tried")
    )
    last = A.alias("last_attempt")
    number = (func.coalesce(tried.c.n, 0) + 1).self_group()  # SQLite's || binds tighter than +
    in_flight = exists().where(A.c.invoice_id == I.c.id, A.c.status.in_((ATT_PENDING, ATT_SUCCEEDED)))
    rows = (
        select(
            I.c.id,
            number,
            literal("invoice-").concat(I.c.id).concat(literal("-attempt-")).concat(number),
            PM.c.id,
            _amount_due(),
            I.c.currency,
            literal(ATT_PENDING),
            literal(now, UTCDateTime),
        )
        .select_from(
            I.join(S, S.c.id == I.c.subscription_id)
            .join(PM, and_(PM.c.user_id == I.c.user_id, PM.c.is_default, PM.c.removed_at.is_(None)))
            .outerjoin(tried, tried.c.invoice_id == I.c.id)
            .outerjoin(last, and_(last.c.invoice_id == I.c.id, last.c.attempt == tried.c.n))
        )
        .where(
            I.c.id.in_(ids),
            I.c.status.in_(INV_PAYABLE),
            S.c.collection_method == COLLECT_AUTO,
            S.c.status.in_(SUB_LIVE),
            ~in_flight,
            or_(last.c.id.is_(None), and_(last.c.next_attempt_at.is_not(None), last.c.next_attempt_at <= now)),
        )
    )
    columns = ["invoice_id", "attempt", "idempotency_key", "payment_method_id", "amount", "currency", "status"]
    recorded = list(session.scalars(insert(A).from_select([*columns, "created_at"], rows).returning(A.c.id)))
    if not recorded:
        return []
    return [
        PendingCharge(*row)
        for row in session.execute(
            select(
                A.c.id,
                A.c.invoice_id,
                A.c.idempotency_key,
                A.c.amount,
                A.c.currency,
                PM.c.provider_ref,
                func.coalesce(U.c.stripe_customer_id, ""),
            )
            .join(PM, PM.c.id == A.c.payment_method_id)
            .join(U, U.c.id == PM.c.user_id)
            .where(A.c.id.in_(recorded))
            .order_by(A.c.invoice_id)
        )
    ]


def record_outcomes(
    session: DbSession, outcomes: list[tuple[int, ChargeOutcome]], now: dt.datetime, settings: BillingSettings
) -> None:
    """record_outcome() of each (attempt id, answer), the successes in set-based statements:
    the attempts marked succeeded, then for invoices still payable whose amount matches,
    one batch each of payments, invoice updates, receipts and invoice.paid events. Anything
    unusual (paid another way meanwhile, voided, another amount, a payment already on
    record) and every other answer goes through record_outcome/fulfil one at a time, which
    flag it. Repeats are harmless, as with record_outcome; the caller commits."""
    if not outcomes:
        return
    session.flush()
    succeeded = {a: o for a, o in outcomes if o.status == SUCCEEDED}
    for attempt_id, outcome in outcomes:
        if outcome.status != SUCCEEDED:
            record_outcome(session, attempt_id, outcome, now, settings)
    if not succeeded:
        return
    # Lock the attempts still open (a webhook reporting one waits, then finds it succeeded).
    open_ids = list(
        session.scalars(
            select(A.c.id)
            .where(A.c.id.in_(sorted(succeeded)), A.c.status != ATT_SUCCEEDED)
            .order_by(A.c.id)
            .with_for_update()
        )
    )
    if not open_ids:
        return
    session.execute(
        update(A)
        .where(A.c.id == bindparam("attempt_id"))
        .values(
            status=ATT_SUCCEEDED,
            finished_at=now,
            next_attempt_at=None,
            failure_code=None,
            failure_reason=None,
            action_url=None,
            provider_ref=func.coalesce(bindparam("ref"), A.c.provider_ref),
        ),
        [{"attempt_id": a, "ref": succeeded[a].provider_ref or None} for a in open_ids],
    )
    rows = list(
        session.execute(
            select(A.c.id, A.c.invoice_id, A.c.idempotency_key, A.c.amount, A.c.currency, I.c.status)
            .add_columns(_amount_due().label("due"))
            .add_columns(I.c.currency.label("invoice_currency"), I.c.subscription_id, I.c.user_id)
            .join(I, I.c.id == A.c.invoice_id)
            .where(A.c.id.in_(open_ids))
            .order_by(I.c.id)
            .with_for_update(of=I)
        )
    )
    refs = {r.id: succeeded[r.id].provider_ref or f"{succeeded[r.id].provider}_{r.idempotency_key}" for r in rows}
    known = set(session.scalars(select(Payment.provider_ref).where(Payment.provider_ref.in_(refs.values()))))
    clean: list[Row[Any]] = []
    unusual: list[Row[Any]] = []
    for r in rows:
        plain = (
            r.status in INV_PAYABLE
            and (r.amount, r.currency.upper()) == (r.due, r.invoice_currency)
            and refs[r.id] not in known
        )
        (clean if plain else unusual).append(r)
    for r in unusual:
        outcome = succeeded[r.id]
        fulfil(session, Checkout(outcome.provider, refs[r.id], r.invoice_id, r.amount, r.currency, PAID), now, settings)
    if not clean:
        return
    invoice_ids = [r.invoice_id for r in clean]
    session.execute(
        insert(Payment.__table__),
        [
            {
                "invoice_id": r.invoice_id,
                "provider": succeeded[r.id].provider,
                "provider_ref": refs[r.id],
                "amount": r.amount,
                "currency": r.currency,
                "status": PAY_SUCCEEDED,
                "note": "",
                "created_at": now,
                "updated_at": now,
            }
            for r in clean
        ],
    )
    session.execute(update(I).where(I.c.id.in_(invoice_ids)).values(status=INV_PAID, paid_at=now))
    session.execute(
        insert(Notification.__table__),
        [
            {"user_id": r.user_id, "invoice_id": r.invoice_id, "kind": NOTE_RECEIPT, "step": 0, "created_at": now}
            for r in clean
        ],
    )
    events.emit_paid(session, I.c.id.in_(invoice_ids), now)
    # A past_due subscription whose invoice is paid may be active again (rare: one at a time).
    subs = {r.subscription_id for r in clean if r.subscription_id is not None}
    for sub_id in session.scalars(select(S.c.id).where(S.c.id.in_(subs), S.c.status == SUB_PAST_DUE).order_by(S.c.id)):
        dunning.settle(session, sub_id, now.date(), settings, now)
    # The ORM's copies of what these statements changed are stale.
    session.expire_all()


def end_unpaid(session: DbSession, now: dt.datetime, settings: BillingSettings) -> int:
    """Cancel past_due subscriptions whose last charge retry failed `cancel_after_days` ago
    and is still unpaid (0: leave them open)."""
    if settings.cancel_after_days <= 0:
        return 0
    limit = now - dt.timedelta(days=settings.cancel_after_days)
    exhausted = (
        select(I.c.subscription_id)
        .join(A, A.c.invoice_id == I.c.id)
        .where(
            I.c.status.in_(INV_PAYABLE),
            A.c.status.in_(UNSUCCESSFUL),
            A.c.next_attempt_at.is_(None),
            A.c.finished_at <= limit,
        )
    )
    ending = and_(S.c.status == SUB_PAST_DUE, S.c.id.in_(exhausted))
    events.emit_ending(session, ending, now)
    result = session.execute(
        update(S).where(ending).values(status=SUB_CANCELED, canceled_at=now, ended_at=now, cancel_at_period_end=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def queue_card_expiry_notices(session: DbSession, now: dt.datetime) -> int:
    """One notice per default card that expires at the end of next month (the month before)."""
    today = now.date()
    month, year = (1, today.year + 1) if today.month == 12 else (today.month + 1, today.year)
    step = year * 100 + month
    N = Notification.__table__
    cards = list(
        session.execute(
            select(PM.c.user_id).where(
                PM.c.is_default,
                PM.c.removed_at.is_(None),
                PM.c.exp_year == year,
                PM.c.exp_month == month,
                ~exists().where(N.c.user_id == PM.c.user_id, N.c.kind == NOTE_CARD_EXPIRING, N.c.step == step),
            )
        )
    )
    for (user_id,) in cards:
        session.add(Notification(user_id=user_id, kind=NOTE_CARD_EXPIRING, step=step, created_at=now))
    session.flush()
    return len(cards)


# -- what the customer is told ---------------------------------------------------------


@dataclass(frozen=True)
class CollectionStatus:
    """The invoice's automatic collection in a sentence's parts (pages, notices, the API)."""

    state: str  # 'scheduled' | 'processing' | 'failed' | 'requires_action' | 'paid'
    card: str = ""  # "Visa •••• 4242"
    on: dt.date | None = None  # when it will be charged (again)
    reason: str = ""  # why the last charge failed, in plain words
    action_url: str = ""


def attempts_of(session: DbSession, invoice_id: int) -> list[PaymentAttempt]:
    """An invoice's attempts, oldest first, with their cards (one more statement, only if any)."""
    return list(
        session.scalars(
            select(PaymentAttempt)
            .where(PaymentAttempt.invoice_id == invoice_id)
            .order_by(PaymentAttempt.attempt)
            .options(selectinload(PaymentAttempt.payment_method))
        )
    )


def _collection_of(session: DbSession, invoice: Invoice) -> tuple[bool, PaymentMethod | None]:
    """(collected automatically now?, the default card): one statement."""
    if invoice.subscription_id is None:
        return False, None
    row = session.execute(
        select(Subscription.collection_method, Subscription.status, PaymentMethod)
        .select_from(Subscription)
        .outerjoin(
            PaymentMethod,
            and_(
                PaymentMethod.user_id == Subscription.user_id,
                PaymentMethod.is_default,
                PaymentMethod.removed_at.is_(None),
            ),
        )
        .where(Subscription.id == invoice.subscription_id)
    ).first()
    if row is None:
        return False, None
    method, status, card = row
    return method == COLLECT_AUTO and status in SUB_LIVE and card is not None, card


def collection_status(
    session: DbSession, invoice: Invoice, now: dt.datetime, attempts: list[PaymentAttempt] | None = None
) -> CollectionStatus | None:
    """None when the invoice is not collected automatically (the customer pays it).
    `attempts`: the invoice's, when the caller has read them already."""
    attempts = attempts_of(session, invoice.id) if attempts is None else attempts
    last = attempts[-1] if attempts else None
    if invoice.status not in INV_PAYABLE:
        return CollectionStatus("paid") if last is not None and last.status == ATT_SUCCEEDED else None
    auto, card = _collection_of(session, invoice)
    label = card.label if card is not None else ""
    if last is None:
        return CollectionStatus("scheduled", label, max(invoice.issued_at.date(), now.date())) if auto else None
    if last.status == ATT_PENDING:
        return CollectionStatus("processing", label)
    on = last.next_attempt_at.date() if auto and last.next_attempt_at is not None else None
    state = "requires_action" if last.status == ATT_ACTION else "failed"
    return CollectionStatus(
        state, label, on, last.failure_reason or plain_reason(last.failure_code), last.action_url or ""
    )


# -- the staff's view -------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeFigures:
    failed: int  # invoices whose charge failed in the window
    recovered: int  # of those, paid since
    rate: float | None  # recovered / failed


def recovery(session: DbSession, now: dt.datetime, days: int = 30) -> ChargeFigures:
    since = now - dt.timedelta(days=days)
    failed_ids = select(A.c.invoice_id).where(A.c.status.in_(UNSUCCESSFUL), A.c.finished_at >= since).distinct()
    failed = session.scalar(select(func.count()).select_from(failed_ids.subquery())) or 0
    recovered = (
        session.scalar(select(func.count()).select_from(I).where(I.c.id.in_(failed_ids), I.c.status == "paid")) or 0
    )
    return ChargeFigures(failed, recovered, (recovered / failed) if failed else None)
