"""Alembic environment: online migrations against the configured URL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, event

from giftq.db import make_engine
from migrations.metadata import include_object, target_metadata

config = context.config


def _sqlite_engine(url: str) -> Engine:
    """SQLite with foreign keys off while migrating, as Alembic's batch mode needs: it copies
    a table and drops the old one, and with foreign keys on that drop is an implicit DELETE
    that every referencing row refuses. :func:`_check_foreign_keys` checks them afterwards."""
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    return engine


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise RuntimeError(f"migration left {len(broken)} rows with a broken reference in {', '.join(tables)}")


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    sqlite = url.startswith("sqlite")
    engine = _sqlite_engine(url) if sqlite else make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                include_object=include_object,
                render_as_batch=connection.dialect.name == "sqlite",
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                _check_foreign_keys(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("giftq migrations run online only: giftq db upgrade")
run_migrations_online()
