"""Queue names and the Redis connection (a real server, or an embedded stand-in)."""

from __future__ import annotations

import threading

import fakeredis
import redis
from rq import Queue

BILLING, NOTIFICATIONS, DEFAULT, PAYMENTS = "billing", "notifications", "default", "payments"
ALL = (BILLING, PAYMENTS, NOTIFICATIONS, DEFAULT)

RESULT_TTL = 24 * 3600  # keep results a day, so Redis does not fill up
FAILURE_TTL = 7 * 24 * 3600  # failed jobs stay a week for staff to see and retry

_embedded = None
_lock = threading.Lock()


# What a Redis that is down, restarting or unreachable raises.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
UNREACHABLE_MESSAGE = "The job queue (Redis) cannot be reached"


def connection(redis_url: str) -> redis.Redis:
    """Redis at REDIS_URL, or one in-process fakeredis shared by the whole process.

    A short connect timeout: a web request asking an unreachable Redis answers in
    seconds, not after the operating system gives up."""
    if redis_url:
        return redis.Redis.from_url(redis_url, socket_connect_timeout=5)
    global _embedded
    with _lock:
        if _embedded is None:
            _embedded = fakeredis.FakeRedis()
        return _embedded


def queue(name: str, conn: redis.Redis) -> Queue:
    return Queue(name, connection=conn)
