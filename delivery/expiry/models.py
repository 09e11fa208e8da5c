"""The record of expiry reminders sent: one row per card, so that none is sent twice."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, utc_datetime


class ExpiryReminder(Base):
    __tablename__ = "expiry_reminders"

    card_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    """The ledger's card id (not a foreign key: delivery uses the ledger through its functions)."""
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("deliveries.id"))
    created_at: Mapped[utc_datetime]
