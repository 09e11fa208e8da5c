"""Migration 0009 on a database with orders: their purchaser key is filled from their
address, and going back turns a held order (nothing issued) into a cancelled one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from giftq import migrate
from giftq.db import make_engine, utcnow


def test_orders_placed_before_get_their_purchaser_key_and_held_ones_go_back_cancelled(
    database_url: str,
) -> None:
    migrate.downgrade(database_url, "0008")
    engine = make_engine(database_url)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO orders (idempotency_key, request_hash, status, purchaser_name,"
                    " purchaser_email, line_count, created_at, updated_at)"
                    " VALUES ('old-1', 'h', 'issued', 'Pat', 'Pat@Example.COM', 1, :now, :now)"
                ),
                {"now": utcnow()},
            )
        migrate.upgrade(database_url, "0009")
        with engine.begin() as c:
            assert c.execute(text("SELECT purchaser_key FROM orders")).scalar_one() == "pat@example.com"
            c.execute(text("UPDATE orders SET status = 'awaiting_payment', payment = 'pending'"))
        migrate.downgrade(database_url, "0008")
        with engine.begin() as c:
            assert c.execute(text("SELECT status FROM orders")).scalar_one() == "cancelled"
        migrate.upgrade(database_url)
    finally:
        engine.dispose()


def test_every_revision_goes_down_and_up_over_issued_orders_and_their_deliveries(
    database_url: str, Session: Any, issued_order: Any
) -> None:
    """Revisions that copy ``orders`` or ``deliveries`` (SQLite's batch mode) keep the rows
    that reference them, and every reference still holds afterwards."""
    issued_order()
    with Session() as s:
        before = {
            table: s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("orders", "order_lines", "deliveries", "ledger_cards")
        }
    assert before["deliveries"] > 0
    head = migrate.current(database_url)
    migrate.downgrade(database_url, "0008")
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == head
    with Session() as s:
        after = {table: s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in before}
    assert after == before
