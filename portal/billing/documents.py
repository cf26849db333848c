"""An invoice as a document: everything the invoice page, the PDF and the mails show.

`invoice_document(invoice, seller)` reads an invoice (with its lines, customer and
payments) into plain frozen values, once; every rendering of the invoice takes this
one object, so the page, the PDF and the mail never disagree. Amounts stay integers
of minor units; formatting is the template's job.

The parties are those the invoice was issued between: the buyer and the seller copied
onto it when it was numbered (billing/numbering.py); an invoice issued before invoices
kept them shows today's details.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..models import INV_PAID, PAY_SUCCEEDED, CreditNote, Invoice, InvoiceLine
from .seller import Seller, as_issued
from .taxes import TaxGroup, tax_summary

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
    tax_cents: int = 0


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
    subtotal: int = 0  # before tax
    tax: int = 0
    taxes: tuple[TaxGroup, ...] = ()  # the tax per rate ("VAT 25.5 %"), untaxed lines left out
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
        """Whether the document shows tax (a rate, or a reverse charge's 0 %) or only a plain total."""
        return bool(self.taxes or self.tax)

    def filename(self, kind: str = INVOICE) -> str:
        """The PDF's file name: the invoice number, safe in any file system."""
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.number)
        if kind == CREDIT_NOTE:
            return f"{safe}.pdf"
        return f"{'Receipt-' if kind == RECEIPT else ''}{safe}.pdf"


def display_number(invoice: Invoice) -> str:
    """The invoice's number; before it is given one, "Draft" and its id (never a number's look-alike)."""
    return invoice.number or f"Draft {invoice.id}"


def _text(obj: Any, name: str) -> str:
    return str(getattr(obj, name) or "").strip()


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
        tax_name=line.tax_name,
        tax_rate_percent=_rate(line.tax_rate_percent),
        tax_cents=line.tax_cents,
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
            unit_amount=invoice.subtotal_cents,
            amount=invoice.subtotal_cents,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
        ),
    )


def invoice_document(invoice: Invoice, seller: Seller) -> Document:
    """The invoice as every rendering shows it (page, PDF, mail); `seller` is today's seller."""
    lines = _lines(invoice)
    paid = [p for p in invoice.payments if p.status == PAY_SUCCEEDED]
    last = paid[-1] if paid else None
    return Document(
        seller=as_issued(invoice.seller, seller),
        buyer=_buyer_of(invoice),
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
        subtotal=invoice.subtotal_cents,
        tax=invoice.tax_cents,
        taxes=tuple(tax_summary(lines)),
        tax_note=invoice.tax_note,
        paid_on=invoice.paid_at.date() if invoice.paid_at else None,
        payment_method=PAYMENT_METHODS.get(last.provider, last.provider) if last else "",
        credit_notes=tuple(
            CreditNoteRef(n.id, n.number, n.issued_at.date(), n.total, n.reason, n.outcome)
            for n in invoice.credit_notes
        ),
        refunds=tuple(RefundRef(r.created_at.date(), r.amount, r.status) for r in invoice.refunds),
        credit_applied=invoice.credit_applied_cents,
        amount_due=invoice.amount_due,
    )


def _buyer_of(invoice: Invoice) -> Buyer:
    """The buyer as the invoice was issued to, or (issued before invoices kept it) the customer today."""
    return _buyer_as_issued(invoice) if invoice.buyer_email else _buyer(invoice.user)


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
            tax_cents=line.tax_cents,
        )
        for line in note.lines
    )
    return Document(
        # The parties of the invoice it corrects, as that invoice was issued.
        seller=as_issued(invoice.seller, seller),
        buyer=_buyer_of(invoice),
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
        taxes=tuple(tax_summary(lines)),
        tax_note=invoice.tax_note,
        corrects=display_number(invoice),
        reason=note.reason,
        outcome=note.outcome,
    )
