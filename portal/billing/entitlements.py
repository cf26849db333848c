"""Entitlements: what a plan grants (features and limits) and what a customer may use now.

A plan's `features` map names to a limit or a switch: {"seats": 10, "priority_support": true,
"support": "email"}. A customer may use their plan's features while the subscription is
trialing or active and collection is not paused; a past-due, paused or ended subscription
grants nothing, and the answer says why.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..models import SUB_CANCELED, SUB_PAST_DUE, DbSession, Subscription

NAME = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
MAX_FEATURES = 100
MAX_TEXT = 200
MAX_LIMIT = 2**53 - 1  # integers JSON clients (JavaScript) read exactly

# Why a customer may use nothing now.
NO_SUBSCRIPTION, PAST_DUE, PAUSED, ENDED = "no_subscription", "past_due", "paused", "ended"
REASONS = (NO_SUBSCRIPTION, PAST_DUE, PAUSED, ENDED)


class FeaturesError(ValueError):
    """Features that are not a flat map of names to true/false, whole numbers or short text."""


def validate_features(raw: object) -> dict[str, bool | int | str]:
    """Check a plan's features (a dict, or its JSON text); the clean dict, or FeaturesError saying what is wrong."""
    if isinstance(raw, str):
        text = raw.strip() or "{}"
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise FeaturesError(f"Features must be valid JSON: {exc}.") from None
    if not isinstance(raw, dict):
        raise FeaturesError('Features must be a JSON object, e.g. {"seats": 10, "priority_support": true}.')
    if len(raw) > MAX_FEATURES:
        raise FeaturesError(f"A plan can have at most {MAX_FEATURES} features.")
    clean: dict[str, bool | int | str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise FeaturesError(
                f"Feature name {name!r}: use 1 to 64 lower-case letters, digits or '_', starting with a letter."
            )
        if isinstance(value, bool):
            clean[name] = value
        elif isinstance(value, int):
            if not 0 <= value <= MAX_LIMIT:
                raise FeaturesError(f"Feature {name!r}: a limit is a whole number from 0 to {MAX_LIMIT}.")
            clean[name] = value
        elif isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value:
            clean[name] = value
        else:
            raise FeaturesError(
                f"Feature {name!r}: the value must be true/false, a whole number, "
                f"or text of at most {MAX_TEXT} characters."
            )
    return clean


@dataclass(frozen=True)
class Entitlements:
    customer_id: int
    entitled: bool  # may use the plan's features now
    reason: str | None  # why not (one of REASONS), None when entitled
    plan: str | None  # the plan code of the latest subscription
    status: str | None  # that subscription's status
    paused: bool
    features: dict[str, Any] = field(default_factory=dict)  # what may be used now ({} when not entitled)


def _latest(session: DbSession, user_id: int) -> Subscription | None:
    """The live subscription, else the one that ended last."""
    subs = session.scalars(
        select(Subscription).where(Subscription.user_id == user_id).order_by(Subscription.id.desc()).limit(5)
    ).all()
    return next((s for s in subs if s.is_live), subs[0] if subs else None)


def for_customer(session: DbSession, user_id: int, now: dt.datetime) -> Entitlements:
    """What this customer may use at `now`."""
    sub = _latest(session, user_id)
    if sub is None:
        return Entitlements(user_id, False, NO_SUBSCRIPTION, None, None, False)
    ended = (
        sub.status == SUB_CANCELED
        or (sub.ended_at is not None and sub.ended_at <= now)
        # set to cancel and its period is over, though the day's billing run has not ended it yet
        or (sub.cancel_at_period_end and now.date() >= sub.current_period_end)
    )
    reason = ENDED if ended else PAST_DUE if sub.status == SUB_PAST_DUE else PAUSED if sub.paused_at else None
    features = dict(sub.plan.features or {}) if reason is None else {}
    return Entitlements(user_id, reason is None, reason, sub.plan.code, sub.status, sub.is_paused, features)
