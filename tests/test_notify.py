import contextlib
import datetime as dt
import email
import email.policy
import smtplib
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from portal.billing.daily import run_day
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Notification, utcnow
from portal.notify.outbox import MAX_ATTEMPTS, deliver_pending, retry_delay
from portal.notify.transport import ConsoleSender, SmtpSender, sender_from_config
from tests.conftest import free_port, utc


class Inbox:
    def __init__(self):
        self.messages, self.peers = [], []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        self.peers.append(session.peer)  # the client's (host, port): one per connection
        return "250 OK"


@pytest.fixture()
def smtp_server():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield "127.0.0.1", port, inbox
    controller.stop()


def queue_some(session, make_user, settings):
    user = make_user(email="ada@example.com", name="Ada")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)
    session.commit()
    run_day(session, utc(2024, 1, 21, 6), settings, session.commit)  # issued + 3-day reminder
    return user


def test_notices_go_out_over_real_smtp_once(app, session, make_user, settings, smtp_server):
    host, port, inbox = smtp_server
    queue_some(session, make_user, settings)
    sender = SmtpSender(host, port, sender="billing@portal.test")
    assert deliver_pending(session, sender, utcnow()) == 2
    session.commit()
    assert deliver_pending(session, sender, utcnow()) == 0
    assert len(inbox.messages) == 2 and len(set(inbox.peers)) == 1  # one connection for the batch
    assert {m.rcpt_tos[0] for m in inbox.messages} == {"ada@example.com"}
    bodies = [m.content.decode() for m in inbox.messages]
    assert any("Subject: Invoice INV-000001 for $29.00" in b for b in bodies)
    assert any("Subject: Reminder: invoice INV-000001 is due in 3 days" in b for b in bodies)
    assert all("http://portal.test/invoices/1" in b for b in bodies)
    stored = session.scalars(select(Notification).order_by(Notification.id)).all()
    assert all(n.sent_at is not None and n.subject and "Hello Ada" in n.body for n in stored)


def test_a_failed_send_stays_queued_with_its_error_and_waits_to_retry(session, make_user, settings):
    queue_some(session, make_user, settings)
    dead = SmtpSender("127.0.0.1", 1)  # nothing listens on port 1
    t0 = utc(2024, 1, 21, 7)
    assert deliver_pending(session, dead, now=t0) == 0
    notes = session.scalars(select(Notification)).all()
    assert notes and all(n.sent_at is None and "ConnectionRefusedError" in n.error for n in notes)
    assert all(n.attempts == 1 and n.next_attempt_at == t0 + dt.timedelta(minutes=5) for n in notes)
    assert deliver_pending(session, ConsoleSender(), now=t0 + dt.timedelta(minutes=4)) == 0  # not yet
    assert deliver_pending(session, ConsoleSender(), now=t0 + dt.timedelta(minutes=5)) == 2
    assert all(n.sent_at is not None and n.error is None for n in notes)


def test_a_notice_that_keeps_failing_is_given_up(session, make_user, settings):
    queue_some(session, make_user, settings)
    dead, when = SmtpSender("127.0.0.1", 1), utc(2024, 1, 21, 7)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert deliver_pending(session, dead, now=when) == 0
        when += retry_delay(attempt)
    notes = session.scalars(select(Notification)).all()
    assert all(n.attempts == MAX_ATTEMPTS for n in notes)
    assert deliver_pending(session, ConsoleSender(), now=when + dt.timedelta(days=1)) == 0  # staff see it


class RefusesOne:
    """An SMTP server that refuses one address, as for a mailbox that no longer exists."""

    def __init__(self, refused: str):
        self.refused, self.delivered = refused, []

    def batch(self):
        return contextlib.nullcontext(self)

    def send(self, to, subject, body, html=None, attachments=()):
        if to == self.refused:
            raise smtplib.SMTPRecipientsRefused({to: (550, b"no such user")})
        self.delivered.append(to)


def test_a_failing_address_does_not_hold_up_the_notices_behind_it(session, make_user, settings):
    queue_some(session, make_user, settings)  # two notices for ada, first in the outbox
    grace = make_user(email="grace@example.com")
    subscribe(session, grace, find_plan(session, "basic"), utc(2024, 1, 21, 8), settings)
    run_day(session, utc(2024, 1, 21, 8), settings, session.commit)  # grace's issue notice
    sender, when = RefusesOne("ada@example.com"), utc(2024, 1, 21, 9)
    assert deliver_pending(session, sender, limit=2, now=when) == 0  # ada's two, refused
    assert deliver_pending(session, sender, limit=2, now=when) == 1  # the next pass moves on
    assert sender.delivered == ["grace@example.com"]


def test_console_sender_prints(app, session, make_user, settings, capsys):
    queue_some(session, make_user, settings)
    assert deliver_pending(session, ConsoleSender(), utcnow()) == 2
    assert "mail to ada@example.com: Invoice INV-000001 for $29.00" in capsys.readouterr().out


def test_sender_follows_config():
    assert isinstance(sender_from_config({"MAIL_SERVER": ""}), ConsoleSender)
    smtp = sender_from_config(
        {
            "MAIL_SERVER": "mail",
            "MAIL_PORT": 2525,
            "MAIL_USERNAME": "",
            "MAIL_PASSWORD": "",
            "MAIL_USE_TLS": False,
            "MAIL_FROM": "x@y.z",
        }
    )
    assert isinstance(smtp, SmtpSender) and (smtp.host, smtp.port) == ("mail", 2525)


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def test_notices_are_html_with_a_text_part_in_the_sellers_branding(
    app, session, make_user, settings, smtp_server, config
):
    config.update(
        SELLER_NAME="Nimbus Notes", SELLER_LEGAL_NAME="Nimbus Software Oy", SELLER_EMAIL="help@nimbus.example"
    )
    host, port, inbox = smtp_server
    queue_some(session, make_user, settings)
    assert (
        deliver_pending(session, sender_from_config({**config, "MAIL_SERVER": host, "MAIL_PORT": port}), utcnow()) == 2
    )
    issued, reminder = (parsed(m) for m in inbox.messages)
    assert issued["From"] == "Nimbus Notes <billing@localhost>" and issued["Reply-To"] == "help@nimbus.example"
    for msg in (issued, reminder):
        parts = [msg, *msg.iter_parts()] if msg.is_multipart() else [msg]
        alternative = [p for p in parts if p.get_content_type() == "multipart/alternative"]
        assert len(alternative) == 1
        assert [p.get_content_type() for p in alternative[0].iter_parts()] == ["text/plain", "text/html"]
        text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
        assert "Hello Ada" in text and "Nimbus Notes" in text and "<html" not in text
        assert "Hello Ada" in html and "Nimbus Software Oy" in html and "help@nimbus.example" in html
        assert "Nimbus Notes · help@nimbus.example" in text and "Nimbus Notes · help@nimbus.example" not in html
        assert '<a href="http://portal.test/invoices/1"' in html and "INV-000001" in html and "$29.00" in html
    # The invoice's PDF goes with "invoice issued", not with a reminder.
    files = [(p.get_content_type(), p.get_filename()) for p in issued.iter_attachments()]
    assert files == [("application/pdf", "INV-000001.pdf")]
    assert issued.get_content_type() == "multipart/mixed"
    pdf_bytes = next(issued.iter_attachments()).get_content()
    assert pdf_bytes.startswith(b"%PDF-")
    assert "The invoice is attached as a PDF" in issued.get_body(("plain",)).get_content()
    assert list(reminder.iter_attachments()) == []
    artifacts = Path(__file__).parent / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "mail-invoice-issued.html").write_text(issued.get_body(("html",)).get_content())


def test_a_receipt_mail_carries_the_receipt_pdf(app, session, make_user, settings, smtp_server):
    from portal.billing import invoices
    from portal.models import Invoice

    host, port, inbox = smtp_server
    queue_some(session, make_user, settings)
    deliver_pending(session, ConsoleSender(), utcnow())
    invoices.record_manual_payment(session, session.get(Invoice, 1), "wire", None, utc(2024, 1, 22, 9), settings)
    session.commit()
    assert deliver_pending(session, SmtpSender(host, port), utcnow()) == 1
    receipt = parsed(inbox.messages[0])
    assert receipt["Subject"] == "Receipt for invoice INV-000001"
    files = [(p.get_content_type(), p.get_filename()) for p in receipt.iter_attachments()]
    assert files == [("application/pdf", "Receipt-INV-000001.pdf")]
    assert "Paid" in receipt.get_body(("html",)).get_content()


def test_the_console_prints_the_text_part_and_names_attachments(app, session, make_user, settings, capsys):
    queue_some(session, make_user, settings)
    deliver_pending(session, ConsoleSender(), utcnow())
    out = capsys.readouterr().out
    assert "Hello Ada" in out and "<html" not in out
    assert "[attached: INV-000001.pdf (application/pdf, " in out and "[also sent as HTML]" in out


def test_account_mail_gets_an_html_part_too(app, session, make_user, smtp_server):
    from portal.notify.outbox import queue_account_mail

    host, port, inbox = smtp_server
    user = make_user(email="new@example.com")
    queue_account_mail(
        session, user.id, "Confirm your email", "Open this link:\nhttp://portal.test/c/abc?x=1&y=2\n", utcnow()
    )
    session.commit()
    assert deliver_pending(session, SmtpSender(host, port), utcnow()) == 1
    html = parsed(inbox.messages[0]).get_body(("html",)).get_content()
    assert '<a href="http://portal.test/c/abc?x=1&amp;y=2"' in html and "Confirm your email" in html
