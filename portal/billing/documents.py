"""An invoice as a document: everything the invoice page, the PDF and the mails show.

`invoice_document(invoice, seller)` reads an invoice (with its lines, customer and
payments) into plain frozen values, once; every rendering of the invoice takes this
one object, so the page, the PDF and the mail never disagree. Amounts stay integers
of minor units; formatting is the template's job.

Fields that only some installations' invoices carry (the customer's billing details,
the invoice's tax breakdown) are read when the model has them and left empty when not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..models import INV_PAID, PAY_SUCCEEDED, CreditNote, Invoice, InvoiceLine
from .seller import Seller

RECEIPT, INVOICE, CREDIT_NOTE = "receipt", "invoice", "credit_note"

# How a payment was made, as a customer's accountant reads it.
PAYMENT_METHODS = {"stripe": "Card (Stripe)", "demo": "Demo checkout", "manual": "Bank transfer / manual"}


@dataclass(frozen=True)
class Buyer:
    email: str
    name: str = ""
    company: str = ""
    address: tuple[str, ...] = ()
    country: str = ""
    tax_id: str = ""

    @property
    def heading(self) -> str:
        """The first line of the "Billed to" block: company, else name, else the email."""
        return self.company or self.name or self.email


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    tax_name: str = ""
    tax_rate_percent: Decimal | None = None
    tax_amount: int | None = None


@dataclass(frozen=True)
class TaxRow:
    """One rate's tax on the whole invoice ("VAT 25.5 %": amount)."""

    name: str
    rate_percent: Decimal | None
    amount: int
    net: int = 0  # the taxable amount at this rate (the lines' net amounts)


@dataclass(frozen=True)
class CreditNoteRef:
    """A credit note as its invoice lists it."""

    id: int
    number: str
    issued_on: dt.date
    total: int
    reason: str
    outcome: str


@dataclass(frozen=True)
class RefundRef:
    issued_on: dt.date
    amount: int
    status: str


@dataclass(frozen=True)
class Document:
    seller: Seller
    buyer: Buyer
    invoice_id: int
    number: str
    status: str
    currency: str
    issued_on: dt.date
    due_on: dt.date
    period_start: dt.date
    period_end: dt.date
    lines: tuple[Line, ...]
    total: int  # what the customer pays, tax included
    subtotal: int | None = None  # before tax, when the invoice records its tax
    tax: int | None = None
    taxes: tuple[TaxRow, ...] = ()
    tax_note: str = ""  # e.g. the reverse-charge notice
    paid_on: dt.date | None = None
    payment_method: str = ""
    # Corrections (billing/credits.py): on an invoice, its credit notes, the credit balance
    # applied and what is still due; on a credit note, the invoice it corrects and why.
    credit_notes: tuple[CreditNoteRef, ...] = ()
    refunds: tuple[RefundRef, ...] = ()
    credit_applied: int = 0
    amount_due: int | None = None
    corrects: str = ""
    reason: str = ""
    outcome: str = ""

    @property
    def is_paid(self) -> bool:
        return self.status == INV_PAID

    @property
    def has_tax(self) -> bool:
        return self.tax is not None

    def filename(self, kind: str = INVOICE) -> str:
        """The PDF's file name: the invoice number, safe in any file system."""
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.number)
        if kind == CREDIT_NOTE:
            return f"{safe}.pdf"
        return f"{'Receipt-' if kind == RECEIPT else ''}{safe}.pdf"


def display_number(invoice: Invoice) -> str:
    """The invoice's number; before it is given one, "Draft" and its id (never a number's look-alike)."""
    return getattr(invoice, "number", None) or f"Draft {invoice.id}"


def _text(obj: Any, name: str) -> str:
    return str(getattr(obj, name, None) or "").strip()


def _buyer_as_issued(invoice: Invoice) -> Buyer:
    """The buyer copied onto the invoice when it was numbered (billing/numbering.py)."""
    address = invoice.buyer_address or ""
    return Buyer(
        email=invoice.buyer_email or "",
        name=(invoice.buyer_name or "").strip(),
        company=(invoice.buyer_company or "").strip(),
        address=tuple(line.strip() for line in address.splitlines() if line.strip()),
        country=(invoice.buyer_country or "").upper(),
        tax_id=invoice.buyer_tax_id or "",
    )


def _buyer(user: Any) -> Buyer:
    address = _text(user, "billing_address")
    return Buyer(
        email=user.email,
        name=_text(user, "billing_name") or _text(user, "name"),
        company=_text(user, "billing_company"),
        address=tuple(line.strip() for line in address.splitlines() if line.strip()),
        country=_text(user, "billing_country").upper(),
        tax_id=_text(user, "tax_id"),
    )


def _rate(value: Any) -> Decimal | None:
    if value is None:
        return None
    rate = Decimal(str(value))
    return rate.quantize(Decimal(1)) if rate == rate.to_integral() else rate.normalize()


def _line(line: InvoiceLine) -> Line:
    return Line(
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        amount=line.amount,
        period_start=line.period_start,
        period_end=line.period_end,
        tax_name=_text(line, "tax_name"),
        tax_rate_percent=_rate(getattr(line, "tax_rate_percent", None)),
        tax_amount=getattr(line, "tax_cents", None),
    )


def _lines(invoice: Invoice) -> tuple[Line, ...]:
    if invoice.lines:
        return tuple(_line(line) for line in invoice.lines)
    # An invoice without stored lines stands for one charge: its plan for its period.
    description = invoice.description or (invoice.plan.name if invoice.plan else "Subscription")
    return (
        Line(
            description=description,
            quantity=1,
            unit_amount=getattr(invoice, "subtotal_cents", None) or invoice.total,
            amount=getattr(invoice, "subtotal_cents", None) or invoice.total,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
        ),
    )


def _taxes(lines: tuple[Line, ...]) -> tuple[TaxRow, ...]:
    """The tax per rate, in the order the rates first appear on the lines."""
    rows: dict[tuple[str, Decimal | None], tuple[int, int]] = {}
    for line in lines:
        if line.tax_amount is None:
            continue
        key = (line.tax_name, line.tax_rate_percent)
        tax, net = rows.get(key, (0, 0))
        rows[key] = (tax + line.tax_amount, net + line.amount)
    return tuple(TaxRow(name, rate, tax, net) for (name, rate), (tax, net) in rows.items())


def invoice_document(invoice: Invoice, seller: Seller) -> Document:
    """The invoice as every rendering shows it (page, PDF, mail)."""
    lines = _lines(invoice)
    tax = getattr(invoice, "tax_cents", None)
    subtotal = getattr(invoice, "subtotal_cents", None)
    if tax is not None and subtotal is None:
        subtotal = invoice.total - tax
    paid = [p for p in invoice.payments if p.status == PAY_SUCCEEDED]
    last = paid[-1] if paid else None
    return Document(
        seller=seller,
        buyer=_buyer_as_issued(invoice) if invoice.buyer_email else _buyer(invoice.user),
        invoice_id=invoice.id,
        number=display_number(invoice),
        status=invoice.status,
        currency=invoice.currency,
        issued_on=invoice.issued_at.date(),
        due_on=invoice.due_date,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        lines=lines,
        total=invoice.total,
        subtotal=subtotal,
        tax=tax,
        taxes=_taxes(lines) if tax is not None else (),
        tax_note=_text(invoice, "tax_note"),
        paid_on=invoice.paid_at.date() if invoice.paid_at else None,
        payment_method=PAYMENT_METHODS.get(last.provider, last.provider) if last else "",
        credit_notes=tuple(
            CreditNoteRef(n.id, n.number, n.issued_at.date(), n.total, n.reason, n.outcome)
            for n in getattr(invoice, "credit_notes", ())
        ),
        refunds=tuple(RefundRef(r.created_at.date(), r.amount, r.status) for r in getattr(invoice, "refunds", ())),
        credit_applied=getattr(invoice, "credit_applied_cents", 0) or 0,
        amount_due=invoice.amount_due,
    )


def credit_note_document(note: CreditNote, seller: Seller) -> Document:
    """A credit note as its PDF shows it: the invoice's parties, the credited lines and their tax."""
    invoice = note.invoice
    lines = tuple(
        Line(
            description=line.description,
            quantity=1,
            unit_amount=line.amount,
            amount=line.amount,
            tax_name=line.tax_name,
            tax_rate_percent=_rate(line.tax_rate_percent),
            tax_amount=line.tax_cents,
        )
        for line in note.lines
    )
    return Document(
        seller=seller,
        buyer=_buyer(invoice.user),
        invoice_id=invoice.id,
        number=note.number,
        status=invoice.status,
        currency=note.currency,
        issued_on=note.issued_at.date(),
        due_on=invoice.due_date,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        lines=lines,
        total=note.total,
        subtotal=note.subtotal_cents,
        tax=note.tax_cents,
        taxes=_taxes(lines),
        tax_note=_text(invoice, "tax_note"),
        corrects=display_number(invoice),
        reason=note.reason,
        outcome=note.outcome,
    )
