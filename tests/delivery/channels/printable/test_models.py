"""Migration 0004 creates exactly the link table of ``models.py``, and goes back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import delivery.channels.printable.models
import delivery.models  # noqa: F401 - the table it refers to
from giftq import migrate
from giftq.db import Base, make_engine

TABLE = "printable_links"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _mentions(item: object) -> bool:
    if isinstance(item, (list, tuple)):
        return any(_mentions(part) for part in item)
    if getattr(item, "name", None) == TABLE or getattr(getattr(item, "table", None), "name", None) == TABLE:
        return True
    return item == TABLE


def test_schema_matches_the_model(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert [d for d in diff if _mentions(d)] == []


def test_down_to_0003_and_up_again(database_url: str) -> None:
    assert TABLE in _tables(database_url)
    migrate.downgrade(database_url, "0003")
    assert migrate.current(database_url) == "0003"
    assert TABLE not in _tables(database_url)
    assert "deliveries" in _tables(database_url)
    migrate.upgrade(database_url)
    assert TABLE in _tables(database_url)
