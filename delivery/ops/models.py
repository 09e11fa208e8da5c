"""The ops audit log: one row per ops action, done or refused.

Written in the transaction of the action it records (so a rolled-back action leaves no
row claiming it happened); a refusal is written in a transaction of its own, after the
action's was rolled back. Arguments are ids, addresses and flags: never a claim code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, EnumText, bigid_pk, sql_in, utc_datetime, utcnow


class Outcome(StrEnum):
    DONE = "done"
    REFUSED = "refused"
    """The action did not apply (or was not confirmed): nothing changed."""
    FAILED = "failed"
    """An unexpected error stopped it: nothing changed."""


class AuditEntry(Base):
    __tablename__ = "ops_audit"
    __table_args__ = (
        CheckConstraint(sql_in("outcome", list(Outcome)), name="outcome"),
        Index("ix_ops_audit_at", "at"),
    )

    id: Mapped[bigid_pk]
    at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    """``--actor``, or the operating-system user who ran the command."""
    action: Mapped[str] = mapped_column(String(40))
    """The command, as typed after ``giftq``: ``ops cancel``, ``ledger void``."""
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[Outcome] = mapped_column(EnumText(Outcome, 16))
    detail: Mapped[str] = mapped_column(Text)
    """What it did (one line), or why it was refused."""
