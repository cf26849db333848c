"""Fixtures: the app on SQLite and on PostgreSQL, a clean database per test.

PostgreSQL is reached at TEST_DATABASE_URL (default: the local `test` database).
Each test session works in a schema of its own, dropped at the end. When the
server is unreachable the PostgreSQL half is skipped locally and fails under
REQUIRE_SERVICES=1 (as .ci/run sets it).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.app import create_app
from portal.billing.catalog import seed_plans
from portal.billing.settings import BillingSettings
from portal.extensions import db
from portal.models import Base, User
from tests.live_server import free_port  # noqa: F401  (re-exported for tests)

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Database 15 belongs to the tests (they empty it): never a developer's database 0.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def service_unavailable(what: str, exc: Exception):
    """The one place a missing service is decided: skipped locally, a failure in CI."""
    message = f"{what} not reachable: {exc}"
    if REQUIRE_SERVICES:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "WTF_CSRF_ENABLED": False,
    "STRIPE_SECRET_KEY": "",
    "STRIPE_WEBHOOK_SECRET": "",
    "REDIS_URL": "",
    "MAIL_SERVER": "",
    "PUBLIC_URL": "http://portal.test",
    # High enough that no test meets them; tests of the limits lower them (tests/api/test_rate_limits.py).
    "API_RATE_LIMIT": "100000/minute",
    "LOGIN_RATE_LIMIT_PER_ACCOUNT": "100000/minute",
    "LOGIN_RATE_LIMIT_PER_ADDRESS": "100000/minute",
}


def ensure_database(url: str) -> None:
    """Create the test database when the server runs but the database does not exist yet."""
    target = sa.engine.make_url(url)
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        server.dispose()


def _postgres_schema_url() -> tuple[str, dict, callable]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    try:
        ensure_database(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        service_unavailable("PostgreSQL", exc)

    def drop():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    # The schema travels in the URL, so worker subprocesses can be pointed at it too.
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), {"pool_pre_ping": True}, drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def app(backend, tmp_path_factory):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        options, drop = {}, (lambda: None)
    else:
        url, options, drop = _postgres_schema_url()
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": options})
    app.config["TEST_DATABASE_URI"] = url
    with app.app_context():
        upgrade()  # the schema comes from the migrations, as in production
    yield app
    with app.app_context():
        db.engine.dispose()
    drop()


@pytest.fixture()
def session(app):
    """db.session inside an app context, on empty tables with the plans seeded."""
    with app.app_context():
        empty_tables(db.engine)
        seed_plans(db.session)
        db.session.commit()
        yield db.session
        db.session.rollback()
        db.session.remove()


def empty_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.execute(sa.text("DELETE FROM sqlite_sequence"))


@pytest.fixture()
def settings():
    return BillingSettings()


@pytest.fixture()
def make_user(session):
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str | None = "correct horse", **kw) -> User:
        user = User(
            email=email or f"customer{next(counter)}@example.com",
            password_hash=generate_password_hash(password) if password else None,
            **kw,
        )
        session.add(user)
        # Committed: requests share the tests' app context and session, and a request
        # answering 4xx rolls back whatever it finds uncommitted (portal/transactions.py).
        session.commit()
        return user

    return make


@pytest.fixture()
def client(app, session):
    return app.test_client()


@pytest.fixture()
def runner(app, session):
    return app.test_cli_runner()


@pytest.fixture()
def listener(session):
    """A (disabled) webhook endpoint subscribed to every event type: events are recorded only
    while someone subscribes to them, and a disabled endpoint is sent nothing."""
    from portal.billing import events, webhooks

    hook = webhooks.create_endpoint(
        session, "http://127.0.0.1:9/hook", events.EVENT_TYPES, "", utc(2020, 1, 1), actor_id=None
    )
    webhooks.disable(session, hook, "test listener", utc(2020, 1, 1), actor_id=None)
    session.commit()
    return hook


def login(client, user) -> None:
    """Log the test client in as `user`: a server-side session row and Flask-Login's keys."""
    from portal.auth import sessions
    from portal.models import utcnow

    token = sessions.create(db.session, user, utcnow())
    db.session.commit()
    with client.session_transaction() as sess:
        sess["_user_id"] = str(user.id)
        sess["_fresh"] = True
        sess[sessions.SESSION_KEY] = token


@pytest.fixture()
def customer(session, make_user, client):
    """A logged-in customer on Pro with the first invoice issued (INV-000001, $29.00)."""
    from portal.billing.subscriptions import find_plan, subscribe

    user = make_user(email="ada@example.com", name="Ada")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings())
    session.commit()
    login(client, user)
    return user


@pytest.fixture(autouse=True)
def own_embedded_queue(monkeypatch):
    """Each test its own in-memory queue: a worker thread an earlier test started (embedded
    mode) must not drain this test's jobs, such as the nudge that sends account mail."""
    import fakeredis

    from portal.jobs import queues

    monkeypatch.setattr(queues, "_embedded", fakeredis.FakeRedis())


@pytest.fixture()
def mailbox(session):
    """mailbox(): the mails queued in the outbox since the last call, as the console prints them.

    Account mails (sign-up and password links) leave through the outbox, never from
    inside a request, so this is where a test finds them.
    """
    from portal.models import Notification

    seen = [0]

    def read() -> str:
        session.expire_all()
        notes = session.scalars(
            select(Notification)
            .where(Notification.id > seen[0], Notification.body.is_not(None))
            .order_by(Notification.id)
        ).all()
        seen[0] = max([seen[0], *(n.id for n in notes)])
        return "".join(f"--- mail to {n.user.email}: {n.subject}\n{n.body}\n---\n" for n in notes)

    return read


@pytest.fixture()
def config(app):
    """Change app.config for one test; restored afterwards."""
    saved = dict(app.config)
    yield app.config
    app.config.clear()
    app.config.update(saved)
