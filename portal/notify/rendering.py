"""A queued notice as the customer reads it, in the seller's branding.

The subject and text come from templates/notices/<kind>.txt (first line: the subject;
stored in the outbox when first sent). The HTML part wraps the same text in
templates/mail/notice.html, with the invoice's summary for invoice notices, and the
invoice's PDF is attached to "invoice issued" (the invoice) and "receipt" (the receipt)
mails. Invoice figures come from one Document (portal.billing.documents), as on the
invoice page and in the PDF.
"""

from __future__ import annotations

import logging
import re

from flask import current_app, render_template
from markupsafe import Markup, escape
from sqlalchemy.orm import object_session

from ..billing.collection import collection_status, default_card
from ..billing.documents import INVOICE, RECEIPT, Document, display_number, invoice_document
from ..billing.money import format_money
from ..billing.seller import Seller
from ..documents import pdf
from ..models import NOTE_ISSUED, NOTE_RECEIPT, Notification
from .transport import Attachment

log = logging.getLogger(__name__)

# Which PDF goes with which notice.
ATTACHED = {NOTE_ISSUED: INVOICE, NOTE_RECEIPT: RECEIPT}

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def _seller() -> Seller:
    return Seller.from_config(current_app.config)


def _document(note: Notification) -> Document | None:
    return invoice_document(note.invoice, _seller()) if note.invoice is not None else None


def _invoice_url(note: Notification) -> str:
    return f"{current_app.config['PUBLIC_URL']}/invoices/{note.invoice_id}" if note.invoice_id else ""


def render(note: Notification, attached: bool = False) -> tuple[str, str]:
    """(subject, body) of a notice, from templates/notices/<kind>.txt.

    The template's first line is the subject; the rest is the body.
    """
    invoice = note.invoice
    session = object_session(note)
    # Reminders and charges are one schedule: a notice about an invoice that will be
    # charged says so (when, to which card), never a bare "please pay".
    collection = collection_status(session, invoice, note.created_at) if invoice and session else None
    card = default_card(session, note.user_id) if session else None
    text = render_template(
        f"notices/{note.kind}.txt",
        note=note,
        user=note.user,
        invoice=invoice,
        number=display_number(invoice) if invoice else "",
        amount=format_money(invoice.total, invoice.currency) if invoice else "",
        days=abs(note.step),
        invoice_url=_invoice_url(note),
        attached=attached,
        collection=collection,
        card=card,
    )
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"


def text_to_html(text: str) -> Markup:
    """Plain text as HTML paragraphs: escaped, line breaks kept, addresses made links."""

    def linked(line: str) -> str:
        out, last = [], 0
        for match in _URL.finditer(line):
            out.append(str(escape(line[last : match.start()])))
            url = escape(match.group(0))
            out.append(f'<a href="{url}" style="color:#4f46e5">{url}</a>')
            last = match.end()
        out.append(str(escape(line[last:])))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return Markup(
        "".join(
            '<p style="margin:0 0 14px">' + "<br>".join(linked(line) for line in p.splitlines()) + "</p>"
            for p in paragraphs
        )
    )


def render_html(note: Notification, subject: str, body: str) -> str:
    """The HTML part: the same words as the text part, in the seller's branding (whose
    footer signs it, so the text's closing line is not repeated)."""
    seller = _seller()
    signature = seller.name + (f" · {seller.email}" if seller.email else "")
    text = body.rstrip()
    if text.endswith("\n" + signature):
        text = text[: -len(signature)]
    return render_template(
        "mail/notice.html",
        note=note,
        subject=subject,
        content=text_to_html(text),
        doc=_document(note),
        invoice_url=_invoice_url(note),
        seller=seller,
    )


def attachments(note: Notification) -> list[Attachment]:
    """The invoice's PDF for an "invoice issued" mail, the receipt's for a "receipt" mail.

    None when the PDF cannot be rendered (Pango not installed, a broken logo...): the
    mail still goes out, with its link to the invoice page, and the error is logged.
    A failure here must not stop the batch, whose sent mails would then go out again.
    """
    kind = ATTACHED.get(note.kind)
    doc = _document(note)
    if kind is None or doc is None or (kind == RECEIPT and not doc.is_paid):
        return []
    try:
        data = pdf.render_pdf(doc, kind)
    except pdf.PdfUnavailable as exc:
        log.warning("notice %s sent without its PDF: %s", note.id, exc)
        return []
    except Exception:
        log.exception("notice %s sent without its PDF: rendering failed", note.id)
        return []
    return [Attachment(doc.filename(kind), pdf.PDF_MIMETYPE, data)]
