"""The database layer both ``ledger`` and ``delivery`` stand on.

- :class:`Base`, the declarative base, with a naming convention so that Alembic
  migrations name constraints the same way on PostgreSQL and SQLite;
- :func:`make_engine`, which sets SQLite up for concurrent use (WAL, a busy
  timeout, foreign keys, and ``BEGIN IMMEDIATE`` so that a write transaction takes
  the write lock up front instead of failing half-way with "database is locked");
- :func:`session_factory`, the process-wide ``sessionmaker`` for entry points.

Functions in the packages take a ``Session`` from their caller; only entry points
(tasks, CLI commands, HTTP handlers) open ``with Session.begin() as session:``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Dialect, Engine, Integer, MetaData, String, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from giftq.settings import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on both engines (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY, so BIGINT ids become INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

bigid_pk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
minor_units = Annotated[int, mapped_column(BigInteger)]
utc_datetime = Annotated[dt.datetime, mapped_column(UTCDateTime())]


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A ``StrEnum`` kept as its text value (plus a CHECK in the table): typed in Python,
    portable in SQL, and a new member is one constraint swap on either engine."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        # A value that is not a member is a bug: refuse it here, before the CHECK does.
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` for a CHECK constraint over an enum's values."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    settings = get_settings()
    url = url or settings.sqlalchemy_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings.sqlite_busy_timeout_ms, **kwargs)
    kwargs.setdefault("pool_size", settings.database_pool_size)
    kwargs.setdefault("max_overflow", settings.database_pool_size)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, busy_timeout_ms: int, **kwargs: Any) -> Engine:
    # No mkdir here: only `giftq db upgrade` (giftq.migrate.upgrade) makes a database, so
    # that a mistyped data dir is an error rather than a new, empty database.
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "sqlite"


def insert_new(session: Session, model: Any, values: dict[str, Any]) -> Any | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the primary key, in one round trip.

    Returns the new row's key, or None when a row with one of its unique values is
    there already. On PostgreSQL a concurrent insert of the same value waits for the
    other transaction and then does nothing, so a caller that gets None can read the
    winner's committed row.
    """
    table = model.__table__
    dialect_insert = sqlite.insert if is_sqlite(session) else postgresql.insert
    statement = dialect_insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg 3 under SQLAlchemy reports -1 here.
    return session.execute(statement.returning(*table.primary_key.columns)).scalar()


@lru_cache(maxsize=1)
def default_engine() -> Engine:
    return make_engine()


@lru_cache(maxsize=1)
def session_factory() -> sessionmaker[Session]:
    return sessionmaker(default_engine(), expire_on_commit=False)


def reset_engine() -> None:
    """Dispose of the process-wide engine (after settings change, or in a forked worker)."""
    if default_engine.cache_info().currsize:
        default_engine().dispose()
    default_engine.cache_clear()
    session_factory.cache_clear()
