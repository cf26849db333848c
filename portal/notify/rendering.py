"""A queued notice as the customer reads it: subject and body from templates/notices/<kind>.txt."""

from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy.orm import object_session

from ..billing.collection import collection_status, default_card
from ..billing.money import format_money
from ..models import Notification


def render(note: Notification) -> tuple[str, str]:
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
        amount=format_money(invoice.total, invoice.currency) if invoice else "",
        days=abs(note.step),
        collection=collection,
        card=card,
        invoice_url=(f"{current_app.config['PUBLIC_URL']}/invoices/{invoice.id}" if invoice else ""),
    )
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"
