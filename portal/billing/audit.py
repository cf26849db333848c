"""The staff audit trail: who did what, to which object, when."""

from __future__ import annotations

import datetime as dt

from ..models import AuditEntry, DbSession


def record(
    session: DbSession, actor_id: int | None, action: str, obj: object, detail: str = "", now: dt.datetime | None = None
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        object_type=type(obj).__name__,
        object_id=getattr(obj, "id", None),
        detail=detail[:2000],
    )
    if now is not None:
        entry.created_at = now
    session.add(entry)
    return entry
