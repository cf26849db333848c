"""Sending deliveries: each signed the Standard Webhooks way (webhook-id, webhook-timestamp,
webhook-signature, with the `standardwebhooks` package), posted with a short timeout, the
answer logged by the core (billing.webhooks.record).

deliver_due() is what a worker runs: fan new events out, then take one endpoint at a
time (locked: no other worker sends to it meanwhile), send its due deliveries in order
until one fails, commit, and go on to the next endpoint, until nothing is due.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from standardwebhooks.webhooks import Webhook

from ..billing import events, webhooks
from ..models import DbSession, OutboundEvent, WebhookEndpoint
from . import urls

log = logging.getLogger(__name__)

USER_AGENT = "billing-portal-webhooks/1"


def _http_session() -> requests.Session:
    http = requests.Session()
    # No proxies or .netrc from the environment: a delivery goes straight to the endpoint
    # checked by urls.check (and requests' per-request look-up of them was a tenth of the time).
    http.trust_env = False
    return http


@dataclass
class Sender:
    """Posts deliveries over one HTTP connection pool (kept alive between deliveries)."""

    timeout: float = 5.0
    allow_private: bool = False
    http: requests.Session = field(default_factory=_http_session)

    def headers(self, endpoint: WebhookEndpoint, event: OutboundEvent, body: str) -> dict[str, str]:
        # The signing time is the real time of this attempt (receivers refuse a stale
        # timestamp), not the app's clock, which tests and "as of" runs move.
        moment = dt.datetime.now(dt.UTC)
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(endpoint.secret).sign(event.msg_id, moment, body),
        }

    def post(self, endpoint: WebhookEndpoint, event: OutboundEvent) -> webhooks.Outcome:
        body = events.payload(event)
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            # Checked again at each send: the name may point elsewhere since it was registered.
            urls.check(endpoint.url, self.allow_private)
            with self.http.post(
                endpoint.url,
                data=body.encode(),
                headers=self.headers(endpoint, event, body),
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                text = response.raw.read(webhooks.BODY_KEPT, decode_content=True) or b""
                return webhooks.Outcome(response.status_code, text.decode("utf-8", "replace"), None, took())
        except urls.BadURL as exc:
            return webhooks.Outcome(None, "", f"Refused: {exc}", took())
        except requests.RequestException as exc:
            return webhooks.Outcome(None, "", f"{type(exc).__name__}: {exc}", took())


@dataclass
class Pass:
    dispatched: int = 0
    sent: int = 0
    failed: int = 0
    more: bool = False  # stopped at the time budget with work left


def deliver_due(
    session: DbSession,
    sender: Sender,
    clock: Callable[[], dt.datetime],
    commit: Callable[[], None],
    batch: int = 200,
    time_budget: float | None = None,
) -> Pass:
    """Dispatch new events and send what is due, one committed transaction per endpoint batch.

    Endpoints take turns (a round visits each once), so a busy one does not starve the
    others. Stops when nothing is due, or after `time_budget` seconds (the caller then
    asks for another pass).
    """
    done = Pass()
    deadline = None if time_budget is None else time.monotonic() + time_budget
    visited: set[int] = set()
    progress = False
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            done.more = True
            break
        if not visited:
            while taken := events.dispatch(session, clock()):
                commit()
                done.dispatched += taken
        now = clock()
        endpoint = webhooks.claim_endpoint(session, now, visited)
        if endpoint is None:
            commit()
            if not progress:
                break
            visited, progress = set(), False  # another round
            continue
        visited.add(endpoint.id)
        for delivery in webhooks.due_deliveries(session, endpoint, now, batch):
            outcome = sender.post(endpoint, delivery.event)
            webhooks.record(session, endpoint, delivery, outcome, clock())
            if not outcome.ok:
                done.failed += 1
                log.warning(
                    "webhook %s to endpoint %s failed (try %d): %s",
                    delivery.event.msg_id,
                    endpoint.id,
                    delivery.attempts,
                    delivery.error,
                )
                break  # the rest waits for this one's retry: deliveries stay in order
            done.sent += 1
            progress = True
        commit()
    return done
