"""Render queued notices from templates and deliver them: console or SMTP."""
from __future__ import annotations

import datetime as dt
import logging
import smtplib
from contextlib import contextmanager, nullcontext, suppress
from email.message import EmailMessage
from typing import ContextManager, Protocol

from flask import current_app, render_template
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from .billing.money import format_money
from .models import NOTE_ACCOUNT, Notification, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6  # tries over about two and a half hours, then staff see the error


def retry_delay(attempts: int) -> dt.timedelta:
    """The pause after the n-th failed try: 5, 10, 20, 40, 80 minutes."""
    return dt.timedelta(minutes=5) * 2 ** (attempts - 1)


class Sender(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...

    def batch(self) -> ContextManager: ...


class ConsoleSender:
    """Prints each message: the default, so a laptop needs no mail server."""

    def send(self, to: str, subject: str, body: str) -> None:
        print(f"--- mail to {to}: {subject}\n{body}\n---", flush=True)

    def batch(self) -> ContextManager:
        return nullcontext(self)


class SmtpSender:
    def __init__(self, host: str, port: int, username: str = "", password: str = "",
                 use_tls: bool = False, sender: str = "billing@localhost"):
        self.host, self.port, self.username, self.password = host, port, username, password
        self.use_tls, self.sender = use_tls, sender
        self._open: smtplib.SMTP | None = None  # the batch's connection

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=30)
        if self.use_tls:
            smtp.starttls()
        if self.username:
            smtp.login(self.username, self.password)
        return smtp

    @contextmanager
    def batch(self):
        """One connection for many messages: a handshake (and TLS) per batch, not per mail.

        If the server cannot be reached, each send tries on its own and fails with
        its own error, which the outbox records.
        """
        with suppress(OSError, smtplib.SMTPException):
            self._open = self._connect()
        try:
            yield self
        finally:
            smtp, self._open = self._open, None
            if smtp is not None:
                with suppress(OSError, smtplib.SMTPException):
                    smtp.quit()

    def send(self, to: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(body)
        if self._open is None:
            with self._connect() as smtp:
                smtp.send_message(msg)
            return
        try:
            self._open.send_message(msg)
        except smtplib.SMTPServerDisconnected:  # dropped mid-batch: once more on a new one
            self._open = None
            self._open = self._connect()
            self._open.send_message(msg)


def sender_from_config(config) -> Sender:
    if config.get("MAIL_SERVER"):
        return SmtpSender(
            config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_USERNAME"],
            config["MAIL_PASSWORD"], config["MAIL_USE_TLS"], config["MAIL_FROM"],
        )
    return ConsoleSender()


def render(note: Notification) -> tuple[str, str]:
    """(subject, body) of a notice, from templates/notices/<kind>.txt.

    The template's first line is the subject; the rest is the body.
    """
    invoice = note.invoice
    text = render_template(
        f"notices/{note.kind}.txt",
        note=note, user=note.user, invoice=invoice,
        amount=format_money(invoice.total, invoice.currency) if invoice else "",
        days=abs(note.step),
        invoice_url=(f"{current_app.config['PUBLIC_URL']}/invoices/{invoice.id}" if invoice else ""),
    )
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"


def deliver_pending(session: Session, sender: Sender, limit: int = 100,
                    now: dt.datetime | None = None) -> int:
    """Render and send up to `limit` unsent notices; the caller commits.

    Rows are locked with SKIP LOCKED (PostgreSQL) so two workers never send one notice.
    A failed send keeps the notice unsent, with its error, and sets it aside until
    its next try, so the notices behind it go out meanwhile.
    """
    now = now or utcnow()
    notes = session.scalars(
        select(Notification)
        .where(
            Notification.sent_at.is_(None),
            Notification.attempts < MAX_ATTEMPTS,
            or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
        )
        .order_by(Notification.id)
        .limit(limit)
        .options(joinedload(Notification.user), joinedload(Notification.invoice))
        .with_for_update(skip_locked=True, of=Notification)
    ).all()
    if not notes:
        return 0  # no connection to the mail server for an empty outbox
    sent = 0
    with sender.batch():
        for note in notes:
            if note.subject is None:
                note.subject, note.body = render(note)
            try:
                sender.send(note.user.email, note.subject, note.body)
            except (OSError, smtplib.SMTPException) as exc:
                note.error = f"{type(exc).__name__}: {exc}"
                note.attempts += 1
                note.next_attempt_at = now + retry_delay(note.attempts)
                last = note.attempts >= MAX_ATTEMPTS
                log.log(logging.ERROR if last else logging.WARNING,
                        "notice %s to user %s not sent (try %d%s): %s",
                        note.id, note.user_id, note.attempts, ", giving up" if last else "", note.error)
                continue
            note.sent_at, note.error = now, None
            if note.kind == NOTE_ACCOUNT:  # its link is a key to the account: not kept here
                note.body = SENT_LINK_BODY
            sent += 1
    session.flush()
    return sent


# One mail of a kind (a sign-up link, a password link) per account in this time: however
# often a form is posted, nobody's mailbox is flooded from here.
ACCOUNT_MAIL_GAP = dt.timedelta(minutes=10)
SENT_LINK_BODY = "(Sent. It held a one-time link, which is kept only in the mail.)"


def queue_account_mail(session: Session, user_id: int, subject: str, body: str, now: dt.datetime) -> bool:
    """Queue a ready-written mail about the account in the outbox; the caller commits.

    Never sent inside a web request: the answer must not depend on (or wait for) the
    mail server, or its timing and errors would tell which addresses have accounts.
    False, and nothing queued, when the same mail went to this account within
    ACCOUNT_MAIL_GAP.
    """
    recent = session.scalar(
        select(Notification.id).where(
            Notification.user_id == user_id, Notification.kind == NOTE_ACCOUNT,
            Notification.subject == subject, Notification.created_at > now - ACCOUNT_MAIL_GAP,
        ).limit(1))
    if recent is not None:
        return False
    session.add(Notification(user_id=user_id, kind=NOTE_ACCOUNT, step=0, subject=subject, body=body,
                             created_at=now))
    session.flush()
    return True
