"""Swap tables: exchange rates as data, and one row per card swapped into another marketplace.

Rates are kept as the decimal text they were given in (never a float) with the UTC date
from which each applies; a pair's rate on a day is the latest one whose date is not after
it. A swap row records the rate it used, the date that rate applies from, and both
amounts, next to the ledger transaction that moved the money.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, bigid_pk, minor_units, utc_datetime, utcnow


class ExchangeRate(Base):
    """One unit of ``from_currency`` is worth ``rate`` units of ``to_currency`` from ``effective_from``."""

    __tablename__ = "ledger_exchange_rates"
    __table_args__ = (
        UniqueConstraint(
            "from_currency", "to_currency", "effective_from", name="uq_ledger_exchange_rates_pair_day"
        ),
        CheckConstraint("from_currency <> to_currency", name="two_currencies"),
    )

    id: Mapped[bigid_pk]
    from_currency: Mapped[str] = mapped_column(String(3))
    to_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(40))
    """A positive decimal, as text: ``0.7912``."""
    effective_from: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)


class Swap(Base):
    """A card voided and its value issued again as a card of another marketplace."""

    __tablename__ = "ledger_swaps"

    id: Mapped[bigid_pk]
    old_card_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_cards.id"), unique=True)
    new_card_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_cards.id"), unique=True)
    transaction_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_transactions.id"))
    from_marketplace: Mapped[str] = mapped_column(String(2))
    to_marketplace: Mapped[str] = mapped_column(String(2))
    from_currency: Mapped[str] = mapped_column(String(3))
    to_currency: Mapped[str] = mapped_column(String(3))
    from_amount: Mapped[minor_units]
    to_amount: Mapped[minor_units]
    rate: Mapped[str] = mapped_column(String(40))
    """The rate used, as text (``1`` between marketplaces of one currency)."""
    rate_date: Mapped[dt.date | None] = mapped_column(Date)
    """The date the rate applies from; None when no conversion was needed."""
    swapped_at: Mapped[utc_datetime]
