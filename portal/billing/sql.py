"""SQL pieces for set-based billing that differ between PostgreSQL and SQLite.

`add_months_sql` is the period rule of periods.add_months as a SQL expression:
PostgreSQL's `date + interval 'n months'` clamps to the month's end exactly as
periods.add_months does; on SQLite the clamp is spelled out with date().
tests/billing/test_periods.py checks both agree with Python on a table of month
ends and leap days.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Date, Executable, Table, Text, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.functions import GenericFunction

from ..models import DbSession


class add_months_sql(GenericFunction[Any]):
    """add_months_sql(date_column, months_expression) -> DATE"""

    type = Date()
    inherit_cache = True
    name = "billing_add_months"


@compiles(add_months_sql, "postgresql")
def _pg(element: add_months_sql, compiler: SQLCompiler, **kw: Any) -> str:
    day, months = list(element.clauses)
    return (
        f"CAST({compiler.process(day, **kw)} + "
        f"make_interval(months => CAST({compiler.process(months, **kw)} AS INTEGER)) AS DATE)"
    )


@compiles(add_months_sql, "sqlite")
def _sqlite(element: add_months_sql, compiler: SQLCompiler, **kw: Any) -> str:
    # date(d, '+n months') overflows (Jan 31 + 1 month = Mar 2); the last day of the
    # target month is date(d, 'start of month', '+n+1 months', '-1 day'). ISO dates
    # compare as text, so the earlier of the two is the clamped day.
    day, months = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"min(date({day}, printf('%+d months', {months})), "
        f"date({day}, 'start of month', printf('%+d months', ({months}) + 1), '-1 day'))"
    )


# The dialects' INSERT and ON CONFLICT classes opt out of SQLAlchemy's statement cache, so
# the billing run's big INSERT was compiled afresh for every chunk (about a second per
# 100,000 invoices). A bare ON CONFLICT DO NOTHING (no target) has nothing to tell two apart,
# so these cacheable subclasses are exact: the INSERT's own cache key, with the class.
# (`_post_values_clause` is where the dialects' on_conflict_do_nothing() puts the clause.)
class _PgNothing(postgresql.dml.OnConflictDoNothing):
    inherit_cache = True
    _traverse_internals = []


class _PgInsertIgnoring(postgresql.Insert):
    inherit_cache = True


class _SqliteNothing(sqlite.dml.OnConflictDoNothing):
    inherit_cache = True
    _traverse_internals = []


class _SqliteInsertIgnoring(sqlite.Insert):
    inherit_cache = True


_IGNORING: dict[str, tuple[type[Insert], type[ClauseElement]]] = {
    "postgresql": (_PgInsertIgnoring, _PgNothing),
    "sqlite": (_SqliteInsertIgnoring, _SqliteNothing),
}


def insert_ignoring_duplicates(session: DbSession, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: the unique constraints decide what exists."""
    dialect = session.get_bind().dialect.name
    if dialect not in _IGNORING:
        raise RuntimeError(f"unsupported database: {dialect}")
    insert_class, nothing = _IGNORING[dialect]
    statement = insert_class(table)
    statement._post_values_clause = nothing()
    # preserve_rowcount: psycopg reports no rowcount for INSERT ... SELECT otherwise.
    return statement.execution_options(preserve_rowcount=True)


def supports_dml_in_cte(session: DbSession) -> bool:
    """True where INSERT ... RETURNING can feed an UPDATE in one statement (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def rows_changed(session: DbSession, statement: Executable) -> int:
    """Run an INSERT, UPDATE or DELETE; how many rows it wrote (-1 where the driver cannot tell)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def in_batches(column: ColumnElement[Any], values: Sequence[Any], size: int = 500) -> list[ColumnElement[bool]]:
    """`column IN (...)` over `values`, a condition per `size` of them (SQLite caps a statement's parameters)."""
    return [column.in_(values[start : start + size]) for start in range(0, len(values), size)]


def const(value: object) -> BindParameter[Any]:
    """A value written into the SQL text, not sent as a parameter.

    Partial indexes (`WHERE status <> 'canceled'`, `WHERE kind = 'period'`) only
    serve a query whose own condition names the same constant: once psycopg
    switches to a prepared generic plan, a parameter would hide it and turn each
    lookup into a table scan.
    """
    return literal(value, literal_execute=True)


class json_object_sql(GenericFunction[Any]):
    """json_object_sql(key, value, key, value, ...) -> the JSON object as TEXT.

    Keys are written into the SQL (const); dates come out as "YYYY-MM-DD" on both databases.
    """

    type = Text()
    inherit_cache = True
    name = "billing_json_object"


@compiles(json_object_sql, "postgresql")
def _pg_json(element: json_object_sql, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(json_build_object({compiler.process(element.clause_expr.element, **kw)}) AS TEXT)"


@compiles(json_object_sql, "sqlite")
def _sqlite_json(element: json_object_sql, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clause_expr.element, **kw)})"


class json_bool_sql(GenericFunction[Any]):
    """A boolean column as a JSON true/false inside json_object_sql (SQLite has only 0 and 1)."""

    inherit_cache = True
    name = "billing_json_bool"


@compiles(json_bool_sql, "postgresql")
def _pg_bool(element: json_bool_sql, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clause_expr.element, **kw)


@compiles(json_bool_sql, "sqlite")
def _sqlite_bool(element: json_bool_sql, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json(CASE WHEN {compiler.process(element.clause_expr.element, **kw)} THEN 'true' ELSE 'false' END)"
