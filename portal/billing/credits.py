"""Corrections: credit notes, refunds and the customer's credit balance.

- An issued invoice is never edited. A CREDIT NOTE takes back some of its lines' net
  amounts (or all that is left of them), each line's tax credited in proportion with the
  rounding rule of billing/taxes.py (half up, per line; the last credit of a line takes
  exactly the tax left, so a line is never credited more tax than it carried). It has
  its own gapless number (billing/numbering.py, prefix CN). Where the money goes:
  an unpaid invoice: off what is still due (all of it: the invoice is settled, no
  more reminders or charges); a paid one: back through the provider (a refund) or
  to the customer's credit balance, as staff choose.
- A REFUND is recorded (pending) with the payment row locked, before the provider is
  called, so concurrent clicks never give back more than was paid; its outcome is
  recorded afterwards (the provider's answer or its `charge.refunded` webhook) and a
  succeeded refund emits `refund.created` in that transaction.
- The CREDIT BALANCE is a ledger (CreditEntry): credit from a downgrade's unused time
  or a credit note, used by the next invoices before they are charged
  (Invoice.credit_applied_cents; amount due = total - credited - credit applied - paid).
  The billing run applies it to a chunk's new invoices in two set-based statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, literal, select, update

from ..models import (
    CN_BALANCE,
    CN_DUE,
    CN_OUTCOMES,
    CN_REFUND,
    CREDIT_APPLIED,
    CREDIT_DOWNGRADE,
    CREDIT_NOTE,
    INV_OPEN,
    INV_PAID,
    INV_PAYABLE,
    INV_VOID,
    PAY_SUCCEEDED,
    REF_FAILED,
    REF_PENDING,
    REF_SUCCEEDED,
    CreditEntry,
    CreditNote,
    CreditNoteLine,
    DbSession,
    Invoice,
    InvoiceLine,
    Payment,
    Refund,
    Subscription,
    User,
    UTCDateTime,
)
from . import audit, dunning, events, taxes
from .errors import BillingError
from .money import format_money, prorate
from .numbering import allocate
from .settings import BillingSettings
from .sql import in_batches

I = Invoice.__table__  # noqa: E741
CE = CreditEntry.__table__
REFUNDABLE_PROVIDERS = ("stripe", "demo")
OUTCOME_LABELS = {CN_DUE: "Taken off the amount due", CN_REFUND: "Refunded", CN_BALANCE: "Added to credit balance"}


# --- the credit balance ---


def balance(session: DbSession, user_id: int, currency: str) -> int:
    """The customer's credit balance in `currency`, minor units."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(CE.c.amount), 0)).where(CE.c.user_id == user_id, CE.c.currency == currency)
        )
        or 0
    )


def balances(session: DbSession, user_id: int) -> dict[str, int]:
    """Every non-zero balance of the customer, by currency."""
    rows = session.execute(
        select(CE.c.currency, func.sum(CE.c.amount)).where(CE.c.user_id == user_id).group_by(CE.c.currency)
    ).all()
    return {currency: int(total) for currency, total in rows if total}


def ledger(session: DbSession, user_id: int, limit: int = 50) -> list[CreditEntry]:
    return list(
        session.scalars(
            select(CreditEntry).where(CreditEntry.user_id == user_id).order_by(CreditEntry.id.desc()).limit(limit)
        )
    )


def add_credit(
    session: DbSession,
    user_id: int,
    amount: int,
    currency: str,
    reason: str,
    description: str,
    now: dt.datetime,
    **source: Any,
) -> CreditEntry:
    entry = CreditEntry(
        user_id=user_id,
        amount=amount,
        currency=currency,
        reason=reason,
        description=description[:255],
        created_at=now,
        **source,
    )
    session.add(entry)
    session.flush()
    return entry


def _lock_customer(session: DbSession, user_id: int) -> None:
    """Serialise uses of one customer's balance (two invoices never spend the same credit)."""
    # FOR NO KEY UPDATE: it serialises these as FOR UPDATE would, and leaves alone the foreign-key
    # checks (FOR KEY SHARE) of a billing chunk holding this customer's subscription (no deadlock).
    session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


def apply_balance(session: DbSession, invoice: Invoice, now: dt.datetime, settings: BillingSettings) -> int:
    """Use the customer's balance on one payable invoice just issued; returns the credit applied.

    An invoice the balance covers in full is paid by credit at once.
    """
    if invoice.status not in INV_PAYABLE:
        return 0
    _lock_customer(session, invoice.user_id)
    session.flush()
    applied = min(balance(session, invoice.user_id, invoice.currency), invoice.amount_due)
    if applied <= 0:
        return 0
    invoice.credit_applied_cents += applied
    add_credit(
        session,
        invoice.user_id,
        -applied,
        invoice.currency,
        CREDIT_APPLIED,
        f"Applied to invoice {invoice.number or invoice.id}",
        now,
        invoice_id=invoice.id,
    )
    _settle_if_nothing_due(session, invoice, now, settings)
    return applied


def any_balance(session: DbSession) -> bool:
    """Whether any customer has ever had credit (else a billing run need not look balances up)."""
    return session.scalar(select(CE.c.id).limit(1)) is not None


def sql_balance(user_id: ColumnElement[Any], currency: ColumnElement[Any]) -> ColumnElement[Any]:
    """A customer's balance in a currency, as SQL: one probe of ix_credit_entries_user, a plan that
    stays cheap whatever the statistics say (in a big run they lag far behind)."""
    return (
        select(func.coalesce(func.sum(CE.c.amount), 0))
        .where(CE.c.user_id == user_id, CE.c.currency == currency)
        .scalar_subquery()
    )


def sql_credit_used(balance: ColumnElement[Any], spent_before: Any, due: ColumnElement[Any]) -> ColumnElement[Any]:
    """What an invoice of `due` takes from a `balance` of which the customer's invoices before it
    (in id order, a running sum) took `spent_before`: all it needs, what is left, or nothing."""
    left = balance - spent_before
    return case((left >= due, due), (left > 0, left), else_=0)


APPLIED_TO_NEW = "Applied to a new invoice"  # a ledger entry's description


def sql_record_used(rows: Any) -> Any:
    """INSERT the ledger entry of each invoice in `rows` (user_id, currency, used, invoice_id) that used credit."""
    columns = ["user_id", "currency", "amount", "invoice_id", "reason", "description", "created_at"]
    return insert(CE).from_select(
        columns,
        select(
            rows.c.user_id,
            rows.c.currency,
            -rows.c.used,
            rows.c.invoice_id,
            literal(CREDIT_APPLIED),
            literal(APPLIED_TO_NEW),
            rows.c.created_at,
        ).where(rows.c.used > 0),
    )


def apply_balances_sql(session: DbSession, issued: ColumnElement[bool], now: dt.datetime) -> int:
    """Apply credit balances to the payable invoices matching `issued` (a chunk's new ones), set-based.

    A customer's invoices use the balance in id order (a running sum), so catching up several
    periods never spends the same credit twice. One UPDATE gives the invoices their credit (and
    the paid status when covered) and returns what each used, which becomes one ledger entry per
    invoice. Meant for invoices just issued (no credit applied yet); on PostgreSQL the billing
    run applies the balance in the INSERT itself (billing/invoicing.py).
    Returns how many invoices used credit.
    """
    session.flush()
    if not any_balance(session):
        return 0
    due = I.c.total - I.c.credited_cents - I.c.credit_applied_cents
    spent_before = func.sum(due).over(partition_by=(I.c.user_id, I.c.currency), order_by=I.c.id) - due
    ranked = (
        select(
            I.c.id,
            due.label("due"),
            sql_credit_used(sql_balance(I.c.user_id, I.c.currency), spent_before, due).label("used"),
        )
        .where(issued, I.c.status == INV_OPEN, due > 0)
        .subquery("ranked")
    )
    uses = select(ranked.c.id, ranked.c.used).where(ranked.c.used > 0).subquery("uses")
    applied = (
        update(I)
        .where(I.c.id == uses.c.id)
        .values(
            credit_applied_cents=I.c.credit_applied_cents + uses.c.used,
            status=case((uses.c.used >= due, INV_PAID), else_=I.c.status),
            paid_at=case((uses.c.used >= due, now), else_=I.c.paid_at),
        )
        .returning(I.c.id.label("invoice_id"))
        .execution_options(synchronize_session=False)
    )
    ids = [row.invoice_id for row in session.execute(applied)]
    for batch in in_batches(I.c.id, ids):
        # A new invoice had no credit before: what it holds now is what it used.
        used = select(
            I.c.user_id,
            I.c.currency,
            I.c.credit_applied_cents.label("used"),
            I.c.id.label("invoice_id"),
            literal(now, UTCDateTime).label("created_at"),
        ).where(batch)
        session.execute(sql_record_used(used.subquery("used")))
    return len(ids)


def _settle_if_nothing_due(session: DbSession, invoice: Invoice, now: dt.datetime, settings: BillingSettings) -> bool:
    """An invoice left with nothing due is settled: paid (by credit notes or the balance)."""
    session.flush()
    session.refresh(invoice, ["payments"])
    if invoice.status not in INV_PAYABLE or invoice.amount_due > 0:
        return False
    invoice.status, invoice.paid_at = INV_PAID, now
    session.flush()
    events.emit(
        session, events.INVOICE_PAID, events.invoice_data(invoice), now, key=f"{events.INVOICE_PAID}:{invoice.id}"
    )
    dunning.settle(session, invoice.subscription_id, now.date(), settings, now)
    return True


# --- downgrades ---


def unused_time_credit(
    session: DbSession,
    sub: Subscription,
    old_price: int,
    new_price: int,
    days_left: int,
    period_days: int,
    now: dt.datetime,
    settings: BillingSettings,
    old_name: str,
    new_name: str,
) -> CreditEntry | None:
    """Credit the unused time of the dearer plan (net difference prorated, with its tax)."""
    net = prorate(old_price - new_price, days_left, period_days)
    if net <= 0:
        return None
    treatment = taxes.treatment_for(session, sub.user, settings.seller_country)
    net, tax = taxes.line_tax(net, treatment.percent, treatment.inclusive)
    return add_credit(
        session,
        sub.user_id,
        net + tax,
        sub.plan.currency,
        CREDIT_DOWNGRADE,
        f"Unused time on {old_name} after moving to {new_name} ({days_left} of {period_days} days)",
        now,
        subscription_id=sub.id,
    )


# --- credit notes ---


@dataclass(frozen=True)
class LineLeft:
    """What of an invoice line can still be credited."""

    line: InvoiceLine
    net: int
    tax: int


def lines_left(session: DbSession, invoice: Invoice) -> list[LineLeft]:
    credited = dict(
        (line_id, (int(net), int(tax)))
        for line_id, net, tax in session.execute(
            select(CreditNoteLine.invoice_line_id, func.sum(CreditNoteLine.amount), func.sum(CreditNoteLine.tax_cents))
            .join(CreditNote, CreditNote.id == CreditNoteLine.credit_note_id)
            .where(CreditNote.invoice_id == invoice.id)
            .group_by(CreditNoteLine.invoice_line_id)
        ).all()
    )
    out = []
    for line in invoice.lines:
        net, tax = credited.get(line.id, (0, 0))
        out.append(LineLeft(line, line.amount - net, line.tax_cents - tax))
    return out


def credited_tax(left: LineLeft, amount: int) -> int:
    """The tax credited with `amount` of a line's net: in proportion, rounded half up; all that is
    left of it when the rest of the line is credited."""
    if amount >= left.net:
        return left.tax
    if left.line.amount <= 0:
        return 0
    return min(prorate(left.line.tax_cents, amount, left.line.amount), left.tax)


def issue_credit_note(
    session: DbSession,
    invoice_id: int,
    amounts: Mapping[int, int] | None,
    reason: str,
    outcome: str | None,
    now: dt.datetime,
    settings: BillingSettings,
    *,
    actor_id: int | None = None,
) -> CreditNote:
    """Credit some lines of an issued invoice ({line id: net amount}) or all that is left (None).

    Unpaid invoice: the credit comes off what is due (outcome is then always CN_DUE).
    Paid invoice: `outcome` is CN_REFUND (a pending Refund on its payments is recorded here;
    the caller asks the provider) or CN_BALANCE. BillingError when refused; nothing written then.
    """
    invoice = session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )
    if invoice is None:
        raise BillingError("This invoice does not exist.", "not_found", 404)
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("Give a reason for the credit note.", "reason_required", 422)
    if invoice.status == INV_VOID:
        raise BillingError(f"Invoice {invoice} is void: there is nothing to credit.", "void")
    if invoice.number is None:
        raise BillingError("This invoice is not issued yet.", "not_issued")
    left = {item.line.id: item for item in lines_left(session, invoice)}
    wanted = {line_id: item.net for line_id, item in left.items() if item.net > 0} if amounts is None else amounts
    picked = [(line_id, amount) for line_id, amount in wanted.items() if amount]
    if not picked:
        raise BillingError("Nothing to credit: choose a line and an amount.", "nothing_to_credit", 422)
    note_lines = []
    for position, (line_id, amount) in enumerate(sorted(picked), start=1):
        item = left.get(line_id)
        if item is None:
            raise BillingError("That line is not on this invoice.", "unknown_line", 422)
        if amount < 0 or amount > item.net:
            raise BillingError(
                f"Line {item.line.position} can be credited at most {format_money(item.net, invoice.currency)}.",
                "too_much",
                422,
            )
        note_lines.append(
            CreditNoteLine(
                invoice_line_id=line_id,
                position=position,
                description=item.line.description,
                amount=amount,
                tax_cents=credited_tax(item, amount),
                tax_rate_percent=item.line.tax_rate_percent,
                tax_name=item.line.tax_name,
            )
        )
    subtotal = sum(line.amount for line in note_lines)
    tax = sum(line.tax_cents for line in note_lines)
    total = subtotal + tax
    unpaid = invoice.status in INV_PAYABLE
    if unpaid:
        outcome = CN_DUE
    elif outcome not in (CN_REFUND, CN_BALANCE):
        raise BillingError("The invoice is paid: choose a refund or a credit to the balance.", "outcome_required", 422)
    elif total > (room := left_to_give_back(session, invoice)):
        raise BillingError(
            f"Only {format_money(max(room, 0), invoice.currency)} of this invoice's payments is left to give back.",
            "too_much",
            422,
        )
    assert outcome in CN_OUTCOMES
    year = now.year if settings.invoice_number_per_year else 0
    note = CreditNote(
        number=allocate(session, settings.credit_note_prefix, year),
        invoice_id=invoice.id,
        user_id=invoice.user_id,
        currency=invoice.currency,
        subtotal_cents=subtotal,
        tax_cents=tax,
        total=total,
        reason=reason[:2000],
        outcome=outcome,
        issued_at=now,
        created_by_id=actor_id,
        lines=note_lines,
    )
    session.add(note)
    session.flush()
    if unpaid:
        due_before = invoice.amount_due
        invoice.credited_cents += total
        if total > due_before:  # credit already applied or paid beyond what is now owed goes back to the balance
            add_credit(
                session, invoice.user_id, total - due_before, invoice.currency, CREDIT_NOTE,
                f"Credit note {note.number} beyond what was due", now, credit_note_id=note.id, invoice_id=invoice.id,
            )  # fmt: skip
        _settle_if_nothing_due(session, invoice, now, settings)
    elif outcome == CN_BALANCE:
        add_credit(
            session, invoice.user_id, total, invoice.currency, CREDIT_NOTE,
            f"Credit note {note.number} for invoice {invoice.number}", now, credit_note_id=note.id,
            invoice_id=invoice.id,
        )  # fmt: skip
    else:
        _refund_for_note(session, invoice, note, now, actor_id)
    audit.record(session, actor_id, "credit_note", invoice, f"{note.number}: {total} {invoice.currency}, {reason}", now)
    session.flush()
    return note


def _refund_for_note(
    session: DbSession, invoice: Invoice, note: CreditNote, now: dt.datetime, actor_id: int | None
) -> list[Refund]:
    """Pending refunds of the note's total over the invoice's payments (latest first); what the
    payments cannot give back (credit applied from the balance) returns to the balance."""
    rest = note.total
    made = []
    payments = session.scalars(
        select(Payment)
        .where(Payment.invoice_id == invoice.id, Payment.status == PAY_SUCCEEDED)
        .order_by(Payment.id.desc())
        .with_for_update()
    ).all()
    for payment in payments:
        if rest <= 0 or payment.provider not in REFUNDABLE_PROVIDERS:
            continue
        part = min(rest, refundable(session, payment))
        if part > 0:
            made.append(_new_refund(session, payment, part, f"Credit note {note.number}", now, actor_id, note.id))
            rest -= part
    if rest > 0:
        if rest == note.total and not invoice.credit_applied_cents:
            raise BillingError(
                "No payment of this invoice can be refunded through a provider: credit the balance instead.",
                "not_refundable",
            )
        add_credit(
            session, invoice.user_id, rest, invoice.currency, CREDIT_NOTE,
            f"Credit note {note.number}: the part paid by credit", now, credit_note_id=note.id, invoice_id=invoice.id,
        )  # fmt: skip
    return made


# --- refunds ---


def left_to_give_back(session: DbSession, invoice: Invoice) -> int:
    """What of a paid invoice can still go back to the customer, by refund or to the balance:
    its succeeded payments and the credit applied, less refunds (not failed) and credit notes
    to the balance. Keeps a refund and a credit note from giving the same money back twice."""
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.invoice_id == invoice.id, Payment.status == PAY_SUCCEEDED
        )
    )
    refunded = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.invoice_id == invoice.id, Refund.status != REF_FAILED
        )
    )
    to_balance = session.scalar(
        select(func.coalesce(func.sum(CreditNote.total), 0)).where(
            CreditNote.invoice_id == invoice.id, CreditNote.outcome == CN_BALANCE
        )
    )
    return int(paid or 0) + invoice.credit_applied_cents - int(refunded or 0) - int(to_balance or 0)


def refundable(session: DbSession, payment: Payment) -> int:
    """What of a succeeded payment can still be given back (failed refunds give nothing back)."""
    if payment.status != PAY_SUCCEEDED:
        return 0
    given = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment.id, Refund.status != REF_FAILED
        )
    )
    return payment.amount - int(given or 0)


def _new_refund(
    session: DbSession,
    payment: Payment,
    amount: int,
    reason: str,
    now: dt.datetime,
    actor_id: int | None,
    credit_note_id: int | None = None,
) -> Refund:
    refund = Refund(
        payment_id=payment.id,
        invoice_id=payment.invoice_id,
        credit_note_id=credit_note_id,
        provider=payment.provider,
        amount=amount,
        currency=payment.currency,
        status=REF_PENDING,
        reason=reason[:2000],
        created_by_id=actor_id,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    session.flush()
    return refund


def start_refund(
    session: DbSession,
    payment_id: int,
    amount: int | None,
    reason: str,
    now: dt.datetime,
    *,
    actor_id: int | None = None,
) -> Refund:
    """Record a pending refund of `amount` (None: all that is left) of a payment; the caller
    commits it, then asks the provider (the refund's id is the idempotency key).

    The payment row is locked: of ten concurrent clicks on "Refund", the first records the
    refund and the others find nothing left to refund (BillingError).
    """
    payment = session.scalar(
        select(Payment).where(Payment.id == payment_id).with_for_update().execution_options(populate_existing=True)
    )
    if payment is None:
        raise BillingError("This payment does not exist.", "not_found", 404)
    if payment.provider not in REFUNDABLE_PROVIDERS:
        raise BillingError("A manual payment is refunded outside the app (by bank transfer).", "not_refundable")
    if payment.status != PAY_SUCCEEDED:
        raise BillingError("Only a succeeded payment can be refunded.", "not_refundable")
    rest = refundable(session, payment)
    if rest <= 0:
        raise BillingError("This payment is refunded in full already.", "already_refunded")
    invoice = session.get(Invoice, payment.invoice_id)
    assert invoice is not None
    if payment.flag is None:  # money the invoice asked for: not what a credit note already gave back
        rest = min(rest, max(left_to_give_back(session, invoice), 0))
        if rest <= 0:
            raise BillingError("This payment was already given back (refunds, credit notes).", "already_refunded")
    amount = rest if amount is None else amount
    if amount <= 0:
        raise BillingError("A refund is a positive amount.", "invalid_amount", 422)
    if amount > rest:
        raise BillingError(
            f"At most {format_money(rest, payment.currency)} of this payment can still be refunded.", "too_much", 422
        )
    refund = _new_refund(session, payment, amount, reason or payment.flag or "", now, actor_id)
    audit.record(session, actor_id, "refund", payment, f"refund #{refund.id}: {amount} {payment.currency}", now)
    session.flush()
    return refund


def refund_data(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "invoice_id": refund.invoice_id,
        "payment_id": refund.payment_id,
        "credit_note_id": refund.credit_note_id,
        "provider": refund.provider,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "created_at": refund.created_at,
    }


def record_refund_outcome(
    session: DbSession, refund_id: int, succeeded: bool, provider_ref: str, now: dt.datetime, error: str = ""
) -> Refund | None:
    """The provider's answer about a refund (from the call or its webhook), recorded once:
    a succeeded refund stays succeeded and emits `refund.created` once."""
    refund = session.scalar(
        select(Refund).where(Refund.id == refund_id).with_for_update().execution_options(populate_existing=True)
    )
    if refund is None or refund.status == REF_SUCCEEDED:
        return refund
    if provider_ref and not refund.provider_ref:
        refund.provider_ref = provider_ref[:255]
    refund.updated_at = now
    if succeeded:
        refund.status, refund.error = REF_SUCCEEDED, None
        session.flush()
        events.emit(
            session, events.REFUND_CREATED, refund_data(refund), now, key=f"{events.REFUND_CREATED}:{refund.id}"
        )
    else:
        refund.status, refund.error = REF_FAILED, (error or "refused by the provider")[:2000]
    session.flush()
    return refund


def credit_notes_of(session: DbSession, invoice_id: int) -> list[CreditNote]:
    return list(session.scalars(select(CreditNote).where(CreditNote.invoice_id == invoice_id).order_by(CreditNote.id)))


def refunds_of(session: DbSession, invoice_id: int) -> list[Refund]:
    return list(session.scalars(select(Refund).where(Refund.invoice_id == invoice_id).order_by(Refund.id)))


def note_of(session: DbSession, invoice_id: int, note_id: int) -> CreditNote | None:
    """A credit note of this invoice (None for another invoice's: the caller answers 404)."""
    return session.scalar(select(CreditNote).where(CreditNote.id == note_id, CreditNote.invoice_id == invoice_id))


def refunds_of_note(session: DbSession, note_id: int) -> list[int]:
    return list(session.scalars(select(Refund.id).where(Refund.credit_note_id == note_id).order_by(Refund.id)))


def refunded_cents(invoice: Invoice) -> int:
    return sum(r.amount for r in getattr(invoice, "refunds", []) if r.status == REF_SUCCEEDED)


def flagged_refundable(session: DbSession, limit: int = 100) -> list[Payment]:
    """Payments staff were asked to refund (a duplicate, a charge after a manual payment) with money left."""
    payments = session.scalars(
        select(Payment)
        .where(Payment.flag.is_not(None), Payment.status == PAY_SUCCEEDED, Payment.provider.in_(REFUNDABLE_PROVIDERS))
        .order_by(Payment.id.desc())
        .limit(limit)
    ).all()
    return [p for p in payments if refundable(session, p) > 0]
