"""The billing core is tested on a plain SQLAlchemy session: no Flask app, no app context.

The schema is the models' metadata (tests/test_migrations.py proves it equals what the
migrations build), on SQLite and on a PostgreSQL schema of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import flask
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from portal.billing.catalog import seed_plans
from portal.models import Base
from tests.conftest import _postgres_schema_url, empty_tables


@pytest.fixture(scope="session")
def engine(backend, tmp_path_factory) -> Iterator[sa.Engine]:
    if backend == "sqlite":
        url, options, drop = f"sqlite:///{tmp_path_factory.mktemp('core') / 'core.db'}", {}, (lambda: None)
    else:
        url, options, drop = _postgres_schema_url()
    engine = sa.create_engine(url, **options)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    drop()


@pytest.fixture()
def new_session(engine) -> sessionmaker[Session]:
    """Another session on the same database (a second worker, a concurrent run)."""
    return sessionmaker(engine)


@pytest.fixture()
def session(engine, new_session) -> Iterator[Session]:
    """A plain session on empty tables with the plans seeded; no app anywhere."""
    assert not flask.has_app_context(), "the core's tests run without a Flask app"
    empty_tables(engine)
    with new_session() as session:
        seed_plans(session)
        session.commit()
        yield session
        session.rollback()
