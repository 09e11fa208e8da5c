"""Small SQL helpers that differ by engine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from giftq.db import insert_new, is_sqlite


def insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted
    (:func:`giftq.db.insert_new`, for callers that need no key back)."""
    return insert_new(session, model, values) is not None


def insert_many(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (all with the same keys) in one statement; their ids, in order.

    On PostgreSQL each column goes in as one array parameter, in binary, unpacked by
    ``unnest``. SQLAlchemy's insertmanyvalues renders a VALUES list with a placeholder
    per value, which psycopg parses again for every batch: that, and dumping bytes and
    timestamps as text, took most of a bulk issuance's time. It is also one statement,
    so a statement-level trigger runs once, not once per row as an executemany would.

    Ids come back in the order of ``rows``: the SELECT feeding the INSERT is ordered,
    and PostgreSQL draws sequence values in that order (what SQLAlchemy's own
    ``sort_by_parameter_order`` relies on for PostgreSQL too).
    """
    if not rows:
        return []
    table = model.__table__
    if is_sqlite(session):
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.scalars(returning, list(rows)))
    dialect = session.get_bind().dialect
    names = list(rows[0])
    arrays: dict[str, list[Any]] = {}
    casts = []
    for i, name in enumerate(names):
        column_type = table.c[name].type
        process = column_type.bind_processor(dialect)
        values = [row[name] for row in rows]
        arrays[f"p{i}"] = [process(v) for v in values] if process else values
        # %(name)b: psycopg's binary placeholder; the names come from the table, not input.
        casts.append(f"CAST(%(p{i})b AS {column_type.compile(dialect=dialect)}[])")
    columns = ", ".join(names)
    statement = (
        f"INSERT INTO {table.name} ({columns})"  # noqa: S608 - identifiers from the model
        f" SELECT {columns} FROM unnest({', '.join(casts)}) WITH ORDINALITY AS r({columns}, ordinality)"
        " ORDER BY ordinality RETURNING id"
    )
    return sorted(session.connection().exec_driver_sql(statement, arrays).scalars().all())


COPY_FROM_ROWS = 50
"""From this many rows on, :func:`copy_many` uses COPY on PostgreSQL; below, one INSERT is cheaper."""


def copy_many(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """:func:`insert_many` through ``COPY`` on PostgreSQL for batches: the ids, in order of ``rows``.

    The ids are drawn from the table's sequence first (one statement), then the rows go
    in with them through one binary ``COPY``, which fires the same triggers, checks and
    foreign keys as an INSERT (a statement-level trigger once per COPY). Against the
    array INSERT it saves dumping every column as an array in Python, which was most of
    a bulk issuance's client time. Small batches and SQLite go through :func:`insert_many`.
    """
    if len(rows) < COPY_FROM_ROWS or is_sqlite(session):
        return insert_many(session, model, rows)
    table = model.__table__
    dialect = session.get_bind().dialect
    names = list(rows[0])
    columns = [
        _column(table.c[name].type.bind_processor(dialect), [row[name] for row in rows]) for name in names
    ]
    driver = driver_connection(session)
    statement = f"COPY {table.name} ({', '.join(['id', *names])}) FROM STDIN (FORMAT BINARY)"
    with database_errors(session, statement):
        drawn = driver.execute(
            "SELECT array(SELECT nextval(s.seq) FROM generate_series(1, %s))"
            " FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) s",
            (len(rows), table.name),
        ).fetchone()
        assert drawn is not None
        ids: list[int] = drawn[0]
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(["int8", *(_COPY_TYPES[type(table.c[name].type).__name__] for name in names)])
            for row in zip(ids, *columns, strict=True):
                copy.write_row(row)
    return ids


def driver_connection(session: Session) -> Any:
    """The driver's connection under the session's (in its transaction), for what SQLAlchemy
    cannot say as cheaply: COPY, and a call whose answer needs no result objects."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    return driver


@contextmanager
def database_errors(session: Session, statement: str) -> Iterator[None]:
    """The driver's errors raised as SQLAlchemy raises them (``IntegrityError``, ...), so that
    callers see the same exceptions whichever way a statement went. Parameters are left out."""
    dbapi = session.get_bind().dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as error:
        raise DBAPIError.instance(statement, None, error, dbapi.Error, hide_parameters=True) from error


def _column(process: Any, values: list[Any]) -> list[Any]:
    """A column's values as bound; a value shared by every row (a timestamp) is processed once."""
    if process is None:
        return values
    first = values[0]
    if all(value is first for value in values):
        return [process(first)] * len(values)
    return [process(value) for value in values]


# How a column's values travel in a binary COPY, by the column's SQLAlchemy type (the
# server reads each with the column's own type, so text serves VARCHAR too).
_COPY_TYPES = {
    "BigInteger": "int8",
    "Integer": "int4",
    "String": "text",
    "LargeBinary": "bytea",
    "UTCDateTime": "timestamptz",
    "JSON": "json",
}
