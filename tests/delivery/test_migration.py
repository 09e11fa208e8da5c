"""Migration 0002 creates exactly what ``delivery/models.py`` describes, and goes back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import delivery.models  # noqa: F401 - registers the delivery tables on the metadata
from giftq import migrate
from giftq.db import Base, make_engine

DELIVERY_TABLES = {"orders", "order_lines", "deliveries", "delivery_attempts", "suppressed_addresses"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    ours = [d for d in diff if DELIVERY_TABLES & set(_names(d))]
    assert ours == []


def _names(diff: object) -> list[str]:
    found: list[str] = []

    def walk(item: object) -> None:
        if isinstance(item, (list, tuple)):
            for part in item:
                walk(part)
        elif hasattr(item, "name"):
            found.append(str(item.name))
            table = getattr(item, "table", None)
            if table is not None:
                found.append(str(table.name))
        elif isinstance(item, str):
            found.append(item)

    walk(diff)
    return found


def test_down_to_the_ledger_and_up_again(database_url: str) -> None:
    assert migrate.current(database_url) == "0005"
    migrate.downgrade(database_url, "0002")
    assert migrate.current(database_url) == "0002"
    assert _tables(database_url) >= DELIVERY_TABLES

    migrate.downgrade(database_url, "0001")
    assert migrate.current(database_url) == "0001"
    left = _tables(database_url)
    assert not DELIVERY_TABLES & left
    assert "ledger_cards" in left

    migrate.upgrade(database_url)
    assert migrate.current(database_url) == "0005"
    assert _tables(database_url) >= DELIVERY_TABLES
