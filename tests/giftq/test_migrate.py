from __future__ import annotations

from sqlalchemy import inspect

from giftq import migrate
from giftq.db import make_engine


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_go_down_and_up_again(database_url: str) -> None:
    head = migrate.current(database_url)
    assert head is not None
    before = _tables(database_url)
    assert {"ledger_accounts", "ledger_entries", "ledger_transactions", "ledger_cards"} <= before

    migrate.downgrade(database_url, "base")
    assert migrate.current(database_url) is None
    assert _tables(database_url) == set()

    migrate.upgrade(database_url)
    assert migrate.current(database_url) == head
    assert _tables(database_url) == before
