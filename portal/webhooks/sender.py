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

import urllib3
from standardwebhooks.webhooks import Webhook

from ..billing import events, webhooks
from ..models import DbSession, OutboundEvent, WebhookEndpoint
from . import urls

log = logging.getLogger(__name__)

USER_AGENT = "billing-portal-webhooks/1"


DRAIN_LIMIT = 64 * 1024  # a longer answer is not read to the end: its connection is closed instead


def _pool() -> urllib3.PoolManager:
    # urllib3 itself (requests' engine, without its per-request work): no retries or
    # redirects of its own, and no proxy settings from the environment: a delivery goes
    # straight to the address urls.check allowed.
    return urllib3.PoolManager(num_pools=50, maxsize=1, retries=False)


@dataclass
class Sender:
    """Posts deliveries over a pool of kept-alive connections (one per endpoint host)."""

    timeout: float = 5.0
    allow_private: bool = False
    http: urllib3.PoolManager = field(default_factory=_pool)

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
            response = self.http.request(
                "POST",
                endpoint.url,
                body=body.encode(),
                headers=self.headers(endpoint, event, body),
                timeout=urllib3.Timeout(total=self.timeout),
                redirect=False,
                preload_content=False,
            )
            try:
                text = response.read(webhooks.BODY_KEPT) or b""
                left = response.length_remaining
                if left is not None and left <= DRAIN_LIMIT:
                    response.drain_conn()  # read to the end: the connection serves the next delivery
                else:
                    response.close()  # endless or huge: not worth reading
            finally:
                response.release_conn()
            return webhooks.Outcome(response.status, text.decode("utf-8", "replace"), None, took())
        except urls.BadURL as exc:
            return webhooks.Outcome(None, "", f"Refused: {exc}", took())
        except urllib3.exceptions.HTTPError as exc:
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
