"""The outbox: notices and account mail wait here as rows until a job sends them.

A request or the billing core only adds a row (the caller commits); deliver_pending,
run by a job or command, renders and sends it, retries a failed send later, and keeps
no one-time link once a mail that held one has gone out.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from ..models import NOTE_ACCOUNT, DbSession, Notification
from .rendering import attachments, render, render_html
from .transport import SEND_ERRORS, Sender

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6  # tries over about two and a half hours, then staff see the error

# One mail of a kind (a sign-up link, a password link) per account in this time: however
# often a form is posted, nobody's mailbox is flooded from here.
ACCOUNT_MAIL_GAP = dt.timedelta(minutes=10)
SENT_LINK_BODY = "(Sent. It held a one-time link, which is kept only in the mail.)"


def retry_delay(attempts: int) -> dt.timedelta:
    """The pause after the n-th failed try: 5, 10, 20, 40, 80 minutes."""
    return dt.timedelta(minutes=5) * 2 ** (attempts - 1)


def deliver_pending(session: DbSession, sender: Sender, now: dt.datetime, limit: int = 100) -> int:
    """Render and send up to `limit` unsent notices; the caller commits.

    Rows are locked with SKIP LOCKED (PostgreSQL) so two workers never send one notice.
    A failed send keeps the notice unsent, with its error, and sets it aside until
    its next try, so the notices behind it go out meanwhile.
    """
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
            files = attachments(note)
            if note.subject is None or note.body is None:
                note.subject, note.body = render(note, attached=bool(files))
            html = render_html(note, note.subject, note.body)
            try:
                sender.send(note.user.email, note.subject, note.body, html=html, attachments=files)
            except SEND_ERRORS as exc:
                note.error = f"{type(exc).__name__}: {exc}"
                note.attempts += 1
                note.next_attempt_at = now + retry_delay(note.attempts)
                last = note.attempts >= MAX_ATTEMPTS
                log.log(
                    logging.ERROR if last else logging.WARNING,
                    "notice %s to user %s not sent (try %d%s): %s",
                    note.id,
                    note.user_id,
                    note.attempts,
                    ", giving up" if last else "",
                    note.error,
                )
                continue
            note.sent_at, note.error = now, None
            if note.kind == NOTE_ACCOUNT:  # its link is a key to the account: not kept here
                note.body = SENT_LINK_BODY
            sent += 1
    session.flush()
    return sent


def queue_account_mail(session: DbSession, user_id: int, subject: str, body: str, now: dt.datetime) -> bool:
    """Queue a ready-written mail about the account in the outbox; the caller commits.

    Never sent inside a web request: the answer must not depend on (or wait for) the
    mail server, or its timing and errors would tell which addresses have accounts.
    False, and nothing queued, when the same mail went to this account within
    ACCOUNT_MAIL_GAP.
    """
    recent = session.scalar(
        select(Notification.id)
        .where(
            Notification.user_id == user_id,
            Notification.kind == NOTE_ACCOUNT,
            Notification.subject == subject,
            Notification.created_at > now - ACCOUNT_MAIL_GAP,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    session.add(Notification(user_id=user_id, kind=NOTE_ACCOUNT, step=0, subject=subject, body=body, created_at=now))
    session.flush()
    return True
