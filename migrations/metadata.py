"""Every package's tables on one metadata: what Alembic compares the database with.

Each package that owns tables is imported here, so that autogenerate sees them all
(a table that is missing here would be proposed for dropping).
"""

from __future__ import annotations

# Imported for what they register on Base.metadata: the HTTP API's tables, the channels',
# the delivery core's, the ops audit log, the birthday programs', the ledger's.
import api.models  # noqa: F401
import delivery.channels.models
import delivery.expiry.models
import delivery.models
import delivery.ops.models
import delivery.programs.models  # noqa: F401
import ledger.models
import ledger.swaps.models  # noqa: F401
from giftq.db import Base

target_metadata = Base.metadata

DATABASE_ONLY_COLUMNS = frozenset({("ledger_transactions", "created_xid")})
"""Columns the database keeps for its own triggers (PostgreSQL), which no model maps."""


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter: leave the database-only columns alone (never propose dropping them)."""
    table = getattr(getattr(obj, "table", None), "name", None)
    return not (type_ == "column" and reflected and (table, name) in DATABASE_ONLY_COLUMNS)
