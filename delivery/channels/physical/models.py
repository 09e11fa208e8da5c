"""The physical channel's tables: batches handed to the vendor, their cards, and what the
vendor reported about each card.

- :class:`FulfilmentBatch`: one hand-over (a drop folder entry or an HTTP post), named by
  ``ref``. Formed when its deliveries are claimed, before anything leaves, so that a run
  that dies after the hand-over sends the same batch again under the same name.
- :class:`FulfilmentItem`: a delivery in a batch (a delivery is in a second batch only if
  the first failed).
- :class:`FulfilmentReport`: the vendor's word on a card (shipped with a tracking number,
  lost, damaged), or ops marking a card lost; append-only, one per event and delivery.

No claim code lives here; a card is its ledger id.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, EnumText, bigid_pk, sql_in, utc_datetime, utcnow


class BatchStatus(StrEnum):
    OPEN = "open"
    """Formed; handed over or not yet known (a run died between hand-over and record)."""
    ACCEPTED = "accepted"
    """The vendor took it (file renamed into place, or HTTP 2xx)."""
    FAILED = "failed"
    """The hand-over failed; its cards went back on the retry schedule."""


class ReportEvent(StrEnum):
    SHIPPED = "shipped"
    LOST = "lost"
    DAMAGED = "damaged"


class FulfilmentBatch(Base):
    __tablename__ = "fulfilment_batches"
    __table_args__ = (CheckConstraint(sql_in("status", list(BatchStatus)), name="status"),)

    id: Mapped[bigid_pk]
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    """The batch's name for the vendor: its folder in the drop, its HTTP idempotency key."""
    backend: Mapped[str] = mapped_column(String(8))
    status: Mapped[BatchStatus] = mapped_column(EnumText(BatchStatus, 16), default=BatchStatus.OPEN)
    cards: Mapped[int] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    """The vendor's answer or the failure, one line, redacted."""
    resends: Mapped[int] = mapped_column(Integer, default=0)
    """Times ops sent it again (``<ref>.r<n>``)."""
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[utc_datetime] = mapped_column(default=utcnow)


class FulfilmentItem(Base):
    __tablename__ = "fulfilment_items"
    __table_args__ = (UniqueConstraint("batch_id", "delivery_id"),)

    id: Mapped[bigid_pk]
    batch_id: Mapped[int] = mapped_column(BigId, ForeignKey("fulfilment_batches.id"))
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("deliveries.id"), index=True)
    card_id: Mapped[int] = mapped_column(BigId)


class FulfilmentReport(Base):
    __tablename__ = "fulfilment_reports"
    __table_args__ = (
        CheckConstraint(sql_in("event", list(ReportEvent)), name="event"),
        Index(None, "delivery_id", "event", unique=True),
    )

    id: Mapped[bigid_pk]
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("deliveries.id"))
    event: Mapped[ReportEvent] = mapped_column(EnumText(ReportEvent, 16))
    carrier: Mapped[str | None] = mapped_column(String(40))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    tracking_url: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    """Where the report came from: ``inbox:<file>``, ``callback``, ``ops``."""
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
