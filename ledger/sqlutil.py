"""Small SQL helpers that differ by engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from giftq.db import is_sqlite


def insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted.

    On PostgreSQL a concurrent insert of the same key waits for the other
    transaction and then does nothing, so a caller that gets False can read the
    winner's committed row.
    """
    dialect_insert = sqlite.insert if is_sqlite(session) else postgresql.insert
    # RETURNING, not rowcount: psycopg 3 under SQLAlchemy reports -1 here.
    table = model.__table__
    statement = (
        dialect_insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key.columns)
    )
    return session.execute(statement).first() is not None
