"""CHECK constraints as a database has them, for revisions that widen one.

Earlier revisions' SQLite batch copies kept the names they were given then, so a revision
finds a CHECK by the column it constrains, not by a name it assumes.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op


def check_of(table: str, column: str) -> str:
    """The name of the CHECK constraint over ``column`` of ``table``."""
    for check in sa.inspect(op.get_bind()).get_check_constraints(table):
        # SQLite keeps the text as written (status IN (...)); PostgreSQL rewrites it
        # (((status)::text = ANY (...))): both start with the column's name.
        if re.match(rf"^\W*{column}\b", str(check["sqltext"])):
            return str(check["name"])
    raise LookupError(f"no CHECK constraint over {table}.{column}")


def replace_check(table: str, column: str, sqltext: str) -> None:
    """Drop the CHECK over ``column`` and create ``sqltext`` in its place, named for it.

    On SQLite this copies the table (Alembic's batch mode): only for tables without
    triggers of their own."""
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(op.f(check_of(table, column)), type_="check")
        batch.create_check_constraint(column, sqltext)
