import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from portal.jobs import context
from tests.conftest import REDIS_URL, service_unavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def redis_conn():
    """The machine's real Redis (a database of the tests' own), emptied around each test."""
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.exceptions.ConnectionError as exc:
        service_unavailable("Redis", exc)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture()
def job_app(app, session):
    """Jobs run in this process use the test app and its database."""
    context.use_app(app)
    yield app
    context.use_app(None)


def worker_env(app, **extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": app.config["TEST_DATABASE_URI"],
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret",
        "STRIPE_SECRET_KEY": "",
        "MAIL_SERVER": "",
        "TZ": "UTC",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(app, *args, **env) -> subprocess.Popen:
    """`python worker.py ...` as production runs it, against the test database and Redis."""
    return subprocess.Popen(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env=worker_env(app, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
