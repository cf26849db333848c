"""Log-in throttling: failures counted atomically, per email and per client address.

Each attempt is counted *before* the password is checked, by one upsert
(INSERT ... ON CONFLICT DO UPDATE SET failures = failures + 1 ... RETURNING),
and the attempt that reaches the limit sets the lock in the same transaction,
while it holds the row. So however many attempts run at once, at most
`threshold` passwords are checked before the lock holds. A success gives the
attempt back.

The lock is a growing delay (1, 2, 4, ... minutes, capped), not a hard lock:
a stranger can only slow an owner down, and a password set from an emailed
link lifts it. A browser the owner logged in from before counts on a key of its
own, so a stranger's failures do not lock the owner out there. Unknown emails
are counted exactly like real ones, so a 429 reveals nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..billing.sql import rows_changed
from ..models import DbSession, LoginThrottle

# A counter nobody has touched for this long starts again from zero.
FORGET_AFTER = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Limit:
    threshold: int  # failures before the first delay
    cap: dt.timedelta  # the longest delay

    def delay(self, failures: int) -> dt.timedelta:
        """1 minute at the threshold, doubling with each further failure, up to the cap."""
        steps = min(failures - self.threshold, 20)
        return min(dt.timedelta(minutes=2**steps), self.cap)


def account_key(email: str) -> str:
    return "acct:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:40]


def device_key(email: str, device: str) -> str:
    return account_key(email) + ":dev:" + hashlib.sha256(device.encode()).hexdigest()[:16]


def password_key(user_id: int) -> str:
    """Guesses of a signed-in user's current password (on the change-password form)."""
    return f"password:{user_id}"


def address_key(remote_addr: str | None) -> str:
    """The client address; an IPv6 client is its /64, as one host usually has a whole /64."""
    try:
        ip = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return "addr:unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return f"addr:{ip.ipv4_mapped}"
        return "addr:" + str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return f"addr:{ip}"


def _upsert(session: DbSession):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def reserve(session: DbSession, key: str, limit: Limit, now: dt.datetime) -> dt.datetime | None:
    """Count one attempt on `key`; None if it may go ahead, else when the lock ends.

    The caller commits before checking the password (the row stays locked until then).
    """
    t = LoginThrottle
    stmt = _upsert(session)(t).values(key=key, failures=1, updated_at=now, locked_until=None)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.key],
        set_={"failures": case((t.updated_at < now - FORGET_AFTER, 1), else_=t.failures + 1), "updated_at": now},
        where=or_(t.locked_until.is_(None), t.locked_until <= now),
    ).returning(t.failures)
    failures = session.execute(stmt).scalar()
    if failures is None:  # locked: nothing counted, nothing to check
        return session.scalar(select(t.locked_until).where(t.key == key)) or now
    if failures >= limit.threshold:
        session.execute(update(t).where(t.key == key).values(locked_until=now + limit.delay(failures)))
    return None


def give_back(session: DbSession, key: str, limit: Limit) -> None:
    """A successful attempt does not count as a failure (an office behind one address)."""
    t = LoginThrottle
    session.execute(
        update(t)
        .where(t.key == key)
        .values(
            failures=case((t.failures > 0, t.failures - 1), else_=0),
            locked_until=case((t.failures - 1 < limit.threshold, None), else_=t.locked_until),
        )
    )


def clear(session: DbSession, *keys: str) -> None:
    """Forget the failures of these keys (a correct password, or a password set from a link)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))


def forget_stale(session: DbSession, now: dt.datetime) -> int:
    """Drop counters nobody touched for a day and that hold no lock (run at each log-in)."""
    t = LoginThrottle
    return rows_changed(
        session,
        delete(t).where(t.updated_at < now - FORGET_AFTER, or_(t.locked_until.is_(None), t.locked_until < now)),
    )


def clear_account(session: DbSession, email: str) -> None:
    """Lift every lock on this email, its known browsers included."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.startswith(account_key(email))))
