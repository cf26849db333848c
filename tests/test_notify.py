import contextlib
import datetime as dt
import smtplib

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

    def send(self, to, subject, body):
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
