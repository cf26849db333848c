"""How a message leaves: printed to the console (the default) or sent over SMTP.

A message has a plain-text part, optionally an HTML part (sent together as
multipart/alternative) and attachments (the invoice's PDF).
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from typing import Protocol

# What a sender raises when a message did not go out: the outbox keeps it for a retry.
SEND_ERRORS = (OSError, smtplib.SMTPException)


@dataclass(frozen=True)
class Attachment:
    filename: str
    mimetype: str  # "application/pdf"
    data: bytes

    def __str__(self) -> str:
        return f"{self.filename} ({self.mimetype}, {max(1, round(len(self.data) / 1024))} kB)"


class Sender(Protocol):
    def send(
        self, to: str, subject: str, body: str, html: str | None = None, attachments: Sequence[Attachment] = ()
    ) -> None: ...

    def batch(self) -> AbstractContextManager: ...


class ConsoleSender:
    """Prints each message's text part and names its attachments: the default, so a
    laptop needs no mail server."""

    def send(
        self, to: str, subject: str, body: str, html: str | None = None, attachments: Sequence[Attachment] = ()
    ) -> None:
        extras = "".join(f"[attached: {a}]\n" for a in attachments)
        if html:
            extras += "[also sent as HTML]\n"
        print(f"--- mail to {to}: {subject}\n{body}\n{extras}---", flush=True)

    def batch(self) -> AbstractContextManager:
        return nullcontext(self)


def build_message(
    sender: str,
    to: str,
    subject: str,
    body: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    reply_to: str = "",
) -> EmailMessage:
    """text (and HTML as its alternative), then the attachments: multipart/mixed when any."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for item in attachments:
        maintype, _, subtype = item.mimetype.partition("/")
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return msg


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        use_tls: bool = False,
        sender: str = "billing@localhost",
        reply_to: str = "",
    ):
        self.host, self.port, self.username, self.password = host, port, username, password
        self.use_tls, self.sender, self.reply_to = use_tls, sender, reply_to
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
        with suppress(*SEND_ERRORS):
            self._open = self._connect()
        try:
            yield self
        finally:
            smtp, self._open = self._open, None
            if smtp is not None:
                with suppress(*SEND_ERRORS):
                    smtp.quit()

    def send(
        self, to: str, subject: str, body: str, html: str | None = None, attachments: Sequence[Attachment] = ()
    ) -> None:
        msg = build_message(self.sender, to, subject, body, html, attachments, self.reply_to)
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
        # "Seller <billing@…>": the seller's name on every mail, replies to its support address.
        name = config.get("SELLER_NAME") or ""
        return SmtpSender(
            config["MAIL_SERVER"],
            config["MAIL_PORT"],
            config["MAIL_USERNAME"],
            config["MAIL_PASSWORD"],
            config["MAIL_USE_TLS"],
            formataddr((name, config["MAIL_FROM"])) if name and "<" not in config["MAIL_FROM"] else config["MAIL_FROM"],
            config.get("SELLER_EMAIL") or "",
        )
    return ConsoleSender()
