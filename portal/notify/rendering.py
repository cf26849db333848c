"""A queued notice as the customer reads it: subject and body from templates/notices/<kind>.txt."""

from __future__ import annotations

from flask import current_app, render_template

from ..billing.money import format_money
from ..models import Notification


def render(note: Notification) -> tuple[str, str]:
    """(subject, body) of a notice, from templates/notices/<kind>.txt.

    The template's first line is the subject; the rest is the body.
    """
    invoice = note.invoice
    text = render_template(
        f"notices/{note.kind}.txt",
        note=note,
        user=note.user,
        invoice=invoice,
        amount=format_money(invoice.total, invoice.currency) if invoice else "",
        days=abs(note.step),
        invoice_url=(f"{current_app.config['PUBLIC_URL']}/invoices/{invoice.id}" if invoice else ""),
    )
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"
