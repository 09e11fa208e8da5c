"""Migration 0006 creates exactly the fulfilment tables the models describe, and goes back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import delivery.channels.models  # noqa: F401 - registers the channels' tables on the metadata
from giftq import migrate
from giftq.db import Base, make_engine

TABLES = {"fulfilment_batches", "fulfilment_items", "fulfilment_reports"}


def test_the_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
            uniques = {u["name"] for u in inspect(connection).get_unique_constraints("fulfilment_items")} | {
                i["name"] for i in inspect(connection).get_indexes("fulfilment_reports") if i["unique"]
            }
    finally:
        engine.dispose()
    assert [d for d in diff if TABLES & set(map(str, _names(d)))] == []
    assert uniques == {"uq_fulfilment_items_batch_id_delivery_id", "ix_fulfilment_reports_delivery_id_event"}


def _names(diff: object) -> list[object]:
    found: list[object] = []
    stack = [diff]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif hasattr(item, "name"):
            found += [item.name, getattr(getattr(item, "table", None), "name", None)]
    return found


def test_down_and_up_again(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        migrate.downgrade(database_url, "0005")  # the revision before the fulfilment tables
        assert not TABLES & set(inspect(engine).get_table_names())
        migrate.upgrade(database_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
