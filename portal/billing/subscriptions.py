"""Subscribe, cancel, resume, pause and change plan: the life of a subscription.

A staff action names its `actor_id`; the change then writes its audit entry here,
in the same call (and so the same transaction) as the change it records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from ..models import (
    INV_OPEN,
    KIND_PRORATION,
    SUB_ACTIVE,
    SUB_CANCELED,
    SUB_TRIALING,
    DbSession,
    Invoice,
    InvoiceLine,
    Plan,
    Subscription,
    User,
)
from . import audit, coupons, credits, events, taxes
from .dunning import queue_issue_notices
from .errors import BillingError
from .invoicing import bill_chunk
from .money import prorate
from .numbering import number_issued
from .periods import INTERVAL_MONTHS, days_between, period_bounds, periods_ended_by
from .pricing import paid_price
from .settings import BillingSettings
from .sql import const

# Built once (most pages ask): building a select costs more than running this one.
_LIVE_SUBSCRIPTION = select(Subscription).where(  # served by the partial unique index on live rows
    Subscription.user_id == bindparam("user_id"), Subscription.status != const(SUB_CANCELED)
)


def live_subscription(session: DbSession, user_id: int) -> Subscription | None:
    return session.scalar(_LIVE_SUBSCRIPTION, {"user_id": user_id})


def lock_subscription(session: DbSession, sub: Subscription) -> None:
    """SELECT ... FOR UPDATE the subscription and reload it: concurrent changes queue here
    and each decides on the state the previous one committed (a no-op on SQLite)."""
    session.refresh(sub, with_for_update=True)


def find_plan(session: DbSession, code: str) -> Plan:
    """The active plan with this code, or a BillingError naming the choices."""
    plan = session.scalar(select(Plan).where(Plan.code == (code or "").strip().lower()))
    if plan is None or not plan.active:
        codes = session.scalars(select(Plan.code).where(Plan.active).order_by(Plan.sort_order, Plan.price)).all()
        raise BillingError(f"Unknown plan {code!r}; choose one of: {', '.join(codes)}.", "unknown_plan", 422)
    return plan


def _ensure_no_live(session: DbSession, user: User) -> None:
    if live_subscription(session, user.id) is not None:
        raise BillingError("You already have a subscription; change its plan instead.", "already_subscribed")


def trial_available(session: DbSession, user_id: int | None) -> bool:
    """One free trial per customer, whatever the plan: only a first subscription has one.

    Any earlier subscription counts (cancelled, ended, or imported), so cancelling and
    subscribing again, or moving to another plan with a trial, starts billing at once.
    """
    if user_id is None:
        return True
    return session.scalar(select(Subscription.id).where(Subscription.user_id == user_id).limit(1)) is None


@dataclass(frozen=True)
class SubscriptionQuote:
    """What subscribing to a plan today would cost, shown before the customer confirms."""

    plan: Plan
    trial_days: int
    due_today: int  # minor units charged now (0 during a trial)
    first_period: tuple[dt.date, dt.date] | None  # what today's invoice covers
    next_billing: dt.date  # the day the next invoice is issued
    next_amount: int


def quote_subscription(plan: Plan, today: dt.date, trial: bool = True) -> SubscriptionQuote:
    """The terms of subscribing to `plan` today, without changing anything.

    `trial`: whether this customer may still have a trial (see trial_available).
    """
    months = INTERVAL_MONTHS[plan.interval]
    trial_days = plan.trial_days if trial else 0
    anchor = today + dt.timedelta(days=trial_days)
    if trial_days:
        return SubscriptionQuote(plan, trial_days, 0, None, anchor, plan.price)
    first = period_bounds(anchor, 0, months)
    return SubscriptionQuote(plan, 0, plan.price, first, first[1], plan.price)


def subscribe(
    session: DbSession,
    user: User,
    plan: Plan,
    now: dt.datetime,
    settings: BillingSettings,
    promotion_code: str | None = None,
) -> Subscription:
    """Start a subscription today: the first invoice now, or when the trial ends.

    A `promotion_code` is checked before anything is written (a bad code refuses the
    subscription with its reason: billing/coupons.py) and discounts the first invoice on.
    """
    if not plan.active:
        raise BillingError(f"The {plan.name} plan is no longer offered.", "unknown_plan", 422)
    # Lock the customer's row: concurrent subscribes of one customer queue here, and
    # the second sees the first's subscription (a no-op on SQLite, where writes queue anyway).
    # FOR NO KEY UPDATE: foreign-key checks (FOR KEY SHARE) of a billing chunk pass.
    session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))
    _ensure_no_live(session, user)
    if promotion_code:
        coupons.check_code(session, user.id, plan, promotion_code, now)
    quote = quote_subscription(plan, now.date(), trial=trial_available(session, user.id))
    today = now.date()
    trial_end = today + dt.timedelta(days=quote.trial_days)
    sub = Subscription(
        user_id=user.id,
        plan_id=plan.id,
        interval_months=INTERVAL_MONTHS[plan.interval],
        price=plan.price,
        status=SUB_TRIALING if quote.trial_days else SUB_ACTIVE,
        anchor=trial_end,
        next_period=0,
        next_period_start=trial_end,
        current_period_start=today,
        current_period_end=trial_end,
        created_at=now,
    )
    try:
        with session.begin_nested():  # the live-subscription index is the last word
            session.add(sub)
    except IntegrityError:
        raise BillingError("You already have a subscription; change its plan instead.", "already_subscribed") from None
    if promotion_code:
        coupons.redeem(session, user, sub, plan, promotion_code, now)
    events.emit(session, events.SUBSCRIPTION_CREATED, events.subscription_data(sub), now)
    if not quote.trial_days:
        bill_chunk(session, sub.id, sub.id, now, settings)  # the first invoice, at once
        queue_issue_notices(session, now, subscription_id=sub.id)  # its notice, not tomorrow's
        session.refresh(sub)
    return sub


def start_imported(
    session: DbSession,
    user: User,
    plan: Plan,
    start: dt.date,
    paid_through: dt.date | None,
    now: dt.datetime,
) -> Subscription:
    """A subscription that began on `start`; periods ended by `paid_through` were billed elsewhere."""
    _ensure_no_live(session, user)
    months = INTERVAL_MONTHS[plan.interval]
    billed = periods_ended_by(start, months, paid_through) if paid_through else 0
    current = max(billed - 1, 0)
    cur_start, cur_end = period_bounds(start, current, months)
    sub = Subscription(
        user_id=user.id,
        plan_id=plan.id,
        interval_months=months,
        price=plan.price,
        status=SUB_ACTIVE,
        anchor=start,
        next_period=billed,
        next_period_start=period_bounds(start, billed, months)[0],
        current_period_start=cur_start,
        current_period_end=cur_end,
        created_at=now,
    )
    session.add(sub)
    session.flush()
    events.emit(session, events.SUBSCRIPTION_CREATED, events.subscription_data(sub), now)
    return sub


def cancel(
    session: DbSession,
    sub: Subscription,
    now: dt.datetime,
    at_once: bool = False,
    *,
    actor_id: int | None = None,
) -> None:
    """Cancel at the end of the current period (default) or at once; audited when staff act."""
    if not sub.is_live:
        raise BillingError("This subscription has already ended.", "not_live")
    sub.canceled_at = now
    sub.pending_plan_id = None
    if at_once:
        sub.status = SUB_CANCELED
        sub.ended_at = now
        sub.cancel_at_period_end = False
    else:
        if sub.cancel_at_period_end:
            raise BillingError("This subscription is already set to cancel.", "already_canceling")
        sub.cancel_at_period_end = True
    if actor_id is not None:
        audit.record(session, actor_id, "cancel_now" if at_once else "cancel_at_period_end", sub, now=now)
    session.flush()
    # Canceled now: it has ended. Set to cancel at period end: it changed (it ends later, in the run).
    kind = events.SUBSCRIPTION_CANCELED if at_once else events.SUBSCRIPTION_UPDATED
    events.emit(session, kind, events.subscription_data(sub), now)


def resume(session: DbSession, sub: Subscription, now: dt.datetime, *, actor_id: int | None = None) -> None:
    """Undo a cancellation at period end, before the period is over."""
    if not sub.is_live or not sub.cancel_at_period_end:
        raise BillingError("Only a subscription set to cancel can be resumed.", "not_canceling")
    if now.date() >= sub.current_period_end:
        raise BillingError("The period has ended; subscribe again instead.", "period_over")
    sub.cancel_at_period_end = False
    sub.canceled_at = None
    if actor_id is not None:
        audit.record(session, actor_id, "resume", sub, now=now)
    session.flush()
    events.emit(session, events.SUBSCRIPTION_UPDATED, events.subscription_data(sub), now)


def pause(session: DbSession, sub: Subscription, now: dt.datetime, *, actor_id: int | None = None) -> None:
    """Pause collection: the billing run issues no invoice for this subscription until it resumes.

    Invoices issued already stay as they are (payable, overdue); a subscription set to cancel
    at period end still ends then.
    """
    lock_subscription(session, sub)
    if not sub.is_live:
        raise BillingError("This subscription has ended.", "not_live")
    if sub.paused_at is not None:
        raise BillingError("Collection is already paused.", "already_paused")
    sub.paused_at = now
    if actor_id is not None:
        audit.record(session, actor_id, "pause", sub, now=now)
    session.flush()
    events.emit(session, events.SUBSCRIPTION_UPDATED, events.subscription_data(sub), now)


def unpause(session: DbSession, sub: Subscription, now: dt.datetime, *, actor_id: int | None = None) -> None:
    """Resume collection after a pause.

    Periods that began and ended while paused are not billed: billing goes on from the
    period that contains today (the next billing run issues its invoice, at the plan's
    full price, as for any period) or, if that one was billed before the pause, the next.
    """
    lock_subscription(session, sub)
    if not sub.is_live:
        raise BillingError("This subscription has ended.", "not_live")
    if sub.paused_at is None:
        raise BillingError("Collection is not paused.", "not_paused")
    today = now.date()
    k = sub.next_period
    while period_bounds(sub.anchor, k, sub.interval_months)[1] <= today:
        k += 1
    if k != sub.next_period:
        sub.next_period = k
        sub.next_period_start = period_bounds(sub.anchor, k, sub.interval_months)[0]
    sub.paused_at = None
    if actor_id is not None:
        audit.record(session, actor_id, "unpause", sub, f"billing from {sub.next_period_start}", now)
    session.flush()
    events.emit(session, events.SUBSCRIPTION_UPDATED, events.subscription_data(sub), now)


@dataclass(frozen=True)
class PlanChange:
    """What changing plan would do today.

    kind: 'upgrade' (now, prorated invoice), 'downgrade' (now, the unused time of the dearer
    price credited to the customer's balance: billing/credits.py), 'switch' (now, nothing to
    charge: a trial, an equal price, or paused collection), 'keep' (drop a scheduled change);
    between billing intervals, 'interval_now' (a new period of the new plan starts today, the
    unused part of the paid period credited on its invoice: monthly to yearly) and
    'interval_later' (from the end of the paid period: yearly to monthly).
    """

    kind: str
    amount: int  # the prorated charge now (upgrade) or credit (downgrade, net of tax), minor units
    currency: str
    days_left: int
    period_days: int
    effective: dt.date  # when the new price starts to apply in full
    credit: int = 0  # interval_now: the unused part of the paid period taken off the new invoice
    unused: int = 0  # interval_now: the unused part of the paid period (more than `credit` if capped)
    new_period_end: dt.date | None = None  # interval_now: the end of the period starting today


def preview_change(sub: Subscription, new_plan: Plan, today: dt.date, *, at_once: bool = False) -> PlanChange:
    """The rules of a plan change, without changing anything.

    `at_once` (staff only): a move to a shorter interval starts today like a move to a
    longer one, instead of when the paid period ends.
    """
    old = sub.plan
    if not sub.is_live:
        raise BillingError("This subscription has ended; subscribe again.", "not_live")
    if not new_plan.active:
        raise BillingError(f"The {new_plan.name} plan is no longer offered.", "unknown_plan", 422)
    if new_plan.id == old.id and sub.pending_plan_id is None:
        raise BillingError(f"You are already on the {old.name} plan.", "same_plan")
    if new_plan.currency != old.currency:
        raise BillingError("Plans with another currency need a new subscription.", "incompatible_plan", 422)
    start, end = sub.current_period_start, sub.current_period_end
    period_days = max(days_between(start, end), 1)
    days_left = min(max(days_between(today, end), 0), period_days)
    paid = paid_price(sub)
    new_months = INTERVAL_MONTHS[new_plan.interval]
    if new_plan.id != old.id and new_months != sub.interval_months:
        return _preview_interval_change(sub, new_plan, today, days_left, period_days, paid, at_once)
    if new_plan.id == old.id:
        kind, effective = "keep", today  # drop the scheduled downgrade
    elif sub.status == SUB_TRIALING or new_plan.price == paid:
        kind, effective = "switch", today  # nothing to charge
    elif sub.is_paused:
        # No invoices while paused: the change applies now, the next billed period pays its price.
        kind, effective = "switch", today
    elif new_plan.price < paid:
        # Cheaper at once: the unused time of the dearer price goes to the credit balance.
        amount = prorate(paid - new_plan.price, days_left, period_days)
        return PlanChange("downgrade", amount, old.currency, days_left, period_days, today)
    else:
        amount = prorate(new_plan.price - paid, days_left, period_days)
        return PlanChange("upgrade", amount, old.currency, days_left, period_days, today)
    return PlanChange(kind, 0, old.currency, days_left, period_days, effective)


def _preview_interval_change(
    sub: Subscription, new_plan: Plan, today: dt.date, days_left: int, period_days: int, paid: int, at_once: bool
) -> PlanChange:
    currency = new_plan.currency
    if sub.is_paused:
        raise BillingError(
            "Payments are paused: resume them before moving between monthly and yearly billing.", "paused"
        )
    if sub.status == SUB_TRIALING:
        # The trial runs on; billing starts when it ends, at the new plan's interval and price.
        return PlanChange("switch", 0, currency, days_left, period_days, today)
    if INTERVAL_MONTHS[new_plan.interval] < sub.interval_months and not at_once:
        return PlanChange("interval_later", 0, currency, days_left, period_days, sub.current_period_end)
    # A new period starts today. The unused part of the paid period is credited against
    # the new invoice, never beyond it (the invoice's total is never negative); a period
    # not invoiced (next_period_start still at its start) has nothing to credit.
    billed = sub.next_period_start >= sub.current_period_end
    unused = prorate(paid, days_left, period_days) if billed else 0
    credit = min(unused, new_plan.price)
    new_end = period_bounds(today, 0, INTERVAL_MONTHS[new_plan.interval])[1]
    return PlanChange(
        "interval_now", new_plan.price - credit, currency, days_left, period_days, today, credit, unused, new_end
    )


def change_plan(
    session: DbSession,
    sub: Subscription,
    new_plan: Plan,
    now: dt.datetime,
    settings: BillingSettings,
    *,
    actor_id: int | None = None,
    at_once: bool = False,
) -> tuple[PlanChange, Invoice | None]:
    """Upgrade now with a prorated invoice; downgrade now with the unused time credited to the
    customer's balance (billing/credits.py); audited when staff act.

    The subscription row is locked and re-read first: of several concurrent
    requests for the same change, the first applies it and the others see the
    new plan ("already on it"), so one change issues one invoice.
    """
    lock_subscription(session, sub)
    change = preview_change(sub, new_plan, now.date(), at_once=at_once)
    invoice = None
    if change.kind == "interval_later":
        sub.pending_plan_id = new_plan.id  # the billing run applies it when the paid period ends
    elif change.kind == "interval_now":
        invoice = _start_new_interval(session, sub, new_plan, change, now, settings)
    else:
        old_plan, old_price = sub.plan, paid_price(sub)
        sub.plan_id, sub.pending_plan_id = new_plan.id, None
        if change.kind != "keep":
            sub.price, sub.pending_price, sub.pending_price_from = new_plan.price, None, None
        if INTERVAL_MONTHS[new_plan.interval] != sub.interval_months:  # during a trial
            sub.interval_months = INTERVAL_MONTHS[new_plan.interval]
        if change.kind == "downgrade":
            credits.unused_time_credit(
                session, sub, old_price, new_plan.price, change.days_left, change.period_days, now, settings,
                old_plan.name, new_plan.name,
            )  # fmt: skip
        elif change.amount > 0:
            invoice = _proration_invoice(session, sub, old_plan.name, new_plan, change, now, settings)
    session.flush()
    session.refresh(sub)  # the plan relationships follow the new ids
    events.emit(session, events.SUBSCRIPTION_UPDATED, events.subscription_data(sub), now)
    if invoice is not None:
        queue_issue_notices(session, now, invoice_id=invoice.id)
        events.emit(
            session,
            events.INVOICE_ISSUED,
            events.invoice_data(invoice),
            now,
            key=f"{events.INVOICE_ISSUED}:{invoice.id}",
        )
    if actor_id is not None:  # after the flush: the detail names the invoice's number
        detail = f"to {new_plan.code} ({change.kind}" + (f", invoice {invoice.number}" if invoice else "") + ")"
        audit.record(session, actor_id, "change_plan", sub, detail, now)
        session.flush()
    session.refresh(sub)
    return change, invoice


def _start_new_interval(
    session: DbSession,
    sub: Subscription,
    new_plan: Plan,
    change: PlanChange,
    now: dt.datetime,
    settings: BillingSettings,
) -> Invoice:
    """Start the new plan's first period today: re-anchored on today, its invoice issued
    now with the period's line and, below it, the unused part of the old period credited."""
    today = now.date()
    assert change.new_period_end is not None
    old_name, old_interval = sub.plan.name, "monthly" if sub.interval_months == 1 else "yearly"
    months = INTERVAL_MONTHS[new_plan.interval]
    sub.plan_id, sub.pending_plan_id = new_plan.id, None
    sub.price, sub.pending_price, sub.pending_price_from = new_plan.price, None, None
    sub.interval_months, sub.anchor, sub.next_period = months, today, 1
    sub.current_period_start, sub.current_period_end = today, change.new_period_end
    sub.next_period_start = change.new_period_end
    treatment = taxes.treatment_for(session, sub.user, settings.seller_country)
    net, tax = taxes.line_tax(new_plan.price, treatment.percent, treatment.inclusive)
    credit_net, credit_tax = taxes.line_tax(change.credit, treatment.percent, treatment.inclusive)
    invoice = Invoice(
        user_id=sub.user_id,
        subscription_id=sub.id,
        plan_id=new_plan.id,
        kind=KIND_PRORATION,  # a plan change's invoice: the run's one-per-period index is for its own
        description=f"{new_plan.name} plan ({new_plan.interval}ly billing from today)",
        period_start=today,
        period_end=change.new_period_end,
        total=net + tax - credit_net - credit_tax,
        subtotal_cents=net - credit_net,
        tax_cents=tax - credit_tax,
        tax_note=treatment.note,
        currency=change.currency,
        status=INV_OPEN,
        issued_at=now,
        due_date=today + dt.timedelta(days=settings.due_days),
    )
    line = dict(tax_rate_percent=treatment.percent, tax_name=treatment.name, quantity=1)
    invoice.lines.append(
        InvoiceLine(
            position=1,
            description=f"{new_plan.name} plan, {new_plan.interval}ly",
            unit_amount=net,
            amount=net,
            period_start=today,
            period_end=change.new_period_end,
            tax_cents=tax,
            **line,
        )
    )
    if change.credit:
        capped = " (up to this invoice's amount)" if change.credit < change.unused else ""
        invoice.lines.append(
            InvoiceLine(
                position=2,
                description=(
                    f"Unused time on {old_name} ({old_interval}): {change.days_left} of "
                    f"{change.period_days} days{capped}"
                ),
                unit_amount=-credit_net,
                amount=-credit_net,
                period_start=today,
                period_end=today + dt.timedelta(days=change.days_left),
                tax_cents=-credit_tax,
                **line,
            )
        )
    session.add(invoice)
    number_issued(session, settings)
    return invoice


def _proration_invoice(
    session: DbSession,
    sub: Subscription,
    old_name: str,
    new_plan: Plan,
    change: PlanChange,
    now: dt.datetime,
    settings: BillingSettings,
) -> Invoice:
    today = now.date()
    treatment = taxes.treatment_for(session, sub.user, settings.seller_country)
    net, tax = taxes.line_tax(change.amount, treatment.percent, treatment.inclusive)
    invoice = Invoice(
        user_id=sub.user_id,
        subscription_id=sub.id,
        plan_id=new_plan.id,
        kind=KIND_PRORATION,
        description=f"{new_plan.name} plan (upgrade)",
        period_start=today,
        period_end=sub.current_period_end,
        total=net + tax,
        subtotal_cents=net,
        tax_cents=tax,
        tax_note=treatment.note,
        currency=change.currency,
        status=INV_OPEN,
        issued_at=now,
        due_date=today + dt.timedelta(days=settings.due_days),
    )
    invoice.lines.append(
        InvoiceLine(
            position=1,
            description=(
                f"Upgrade from {old_name} to {new_plan.name}, prorated for "
                f"{change.days_left} of {change.period_days} days"
            ),
            quantity=1,
            unit_amount=net,
            amount=net,
            period_start=today,
            period_end=sub.current_period_end,
            tax_cents=tax,
            tax_rate_percent=treatment.percent,
            tax_name=treatment.name,
        )
    )
    session.add(invoice)
    number_issued(session, settings)
    credits.apply_balance(session, invoice, now, settings)
    return invoice
