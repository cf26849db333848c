"""Webhook delivery on real Redis: a commit that recorded events queues the delivery job on
the notifications queue (a rollback queues nothing), a worker sends them, and a Redis that
cannot be reached never fails the change itself."""

from __future__ import annotations

import time

from rq import SimpleWorker

from portal.billing import webhooks
from portal.billing.subscriptions import find_plan, subscribe
from portal.jobs import queues, tasks
from tests.conftest import REDIS_URL, utc
from tests.test_webhooks import Receiver

NOW = utc(2024, 1, 31, 8)


def queued(conn) -> list[str]:
    return [job.func_name for job in queues.queue(queues.NOTIFICATIONS, conn).jobs]


def test_a_commit_with_events_queues_their_delivery_and_a_worker_sends_them(
    job_app, redis_conn, session, make_user, settings, config
):
    config.update(REDIS_URL=REDIS_URL, WEBHOOKS_ALLOW_PRIVATE_URLS=True)
    receiver = Receiver().start()
    try:
        endpoint = webhooks.create_endpoint(session, receiver.url, ["subscription.created"], "", NOW, actor_id=None)
        session.commit()
        receiver.secret = endpoint.secret
        assert queued(redis_conn) == []  # registering an endpoint records no event
        subscribe(session, make_user(), find_plan(session, "pro"), NOW, settings)
        session.rollback()
        assert queued(redis_conn) == []  # rolled back: nothing to send, nobody nudged
        subscribe(session, make_user(), find_plan(session, "pro"), NOW, settings)
        session.commit()
        assert queued(redis_conn) == ["portal.jobs.tasks.deliver_webhooks"]
        worker = SimpleWorker([queues.queue(queues.NOTIFICATIONS, redis_conn)], connection=redis_conn)
        worker.work(burst=True)
    finally:
        receiver.stop()
    assert receiver.types() == ["subscription.created"] and receiver.bad_signatures == 0


def test_an_unreachable_redis_never_fails_the_change(
    job_app, session, make_user, settings, config, monkeypatch, listener
):
    config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(tasks, "_unreachable_until", 0.0)
    user = make_user()
    subscribe(session, user, find_plan(session, "pro"), NOW, settings)
    session.commit()  # the nudge fails quietly; the events wait for the sweep
    assert tasks._unreachable_until > time.monotonic()
    assert tasks.nudge_webhooks("redis://127.0.0.1:1/0") is False  # not tried again for a while
    assert user.subscriptions
