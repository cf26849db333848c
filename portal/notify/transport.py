"""How a message leaves: printed to the console (the default) or sent over SMTP."""

from __future__ import annotations

import smtplib
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from email.message import EmailMessage
from typing import Protocol

# What a sender raises when a message did not go out: the outbox keeps it for a retry.
SEND_ERRORS = (OSError, smtplib.SMTPException)


class Sender(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...

    def batch(self) -> AbstractContextManager: ...


class ConsoleSender:
    """Prints each message: the default, so a laptop needs no mail server."""

    def send(self, to: str, subject: str, body: str) -> None:
        print(f"--- mail to {to}: {subject}\n{body}\n---", flush=True)

    def batch(self) -> AbstractContextManager:
        return nullcontext(self)


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        use_tls: bool = False,
        sender: str = "billing@localhost",
    ):
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
        with suppress(*SEND_ERRORS):
            self._open = self._connect()
        try:
            yield self
        finally:
            smtp, self._open = self._open, None
            if smtp is not None:
                with suppress(*SEND_ERRORS):
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
            config["MAIL_SERVER"],
            config["MAIL_PORT"],
            config["MAIL_USERNAME"],
            config["MAIL_PASSWORD"],
            config["MAIL_USE_TLS"],
            config["MAIL_FROM"],
        )
    return ConsoleSender()
