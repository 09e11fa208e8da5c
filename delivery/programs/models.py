"""The tables of birthday programs.

- :class:`BirthdayProgram`: who gets what every year, and when the next year's gift is placed
  (``next_year``, ``next_place_at``: beat's index). Changing a program changes what later
  years place; a gift already placed is its own order row and is never touched.
- :class:`ProgramPlacement`: one row per program and year, written in the same transaction
  as the order it placed, or with the reason the year was skipped (too late, paused,
  refused by intake). Unique per (program, year): a rerun or a second beat adds nothing.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, EnumText, bigid_pk, minor_units, sql_in, utc_datetime, utcnow


class ProgramStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    """No gift is placed until it is resumed; years missed meanwhile are recorded as skipped."""
    ENDED = "ended"
    """For good: no later year is placed."""


class ProgramChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class SkipReason(StrEnum):
    TOO_LATE = "too_late"
    """Nothing ran between the placement time and the end of the catch-up window."""
    PAUSED = "paused"
    """The program was paused over that year's placement time."""
    REFUSED = "refused"
    """Intake refused the order (e.g. a design removed since); ``detail`` says why."""


class BirthdayProgram(Base):
    __tablename__ = "birthday_programs"
    __table_args__ = (
        CheckConstraint(sql_in("status", list(ProgramStatus)), name="status"),
        CheckConstraint(sql_in("channel", list(ProgramChannel)), name="channel"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index(None, "status", "next_place_at"),
    )

    id: Mapped[bigid_pk]
    name: Mapped[str] = mapped_column(String(100))
    """The person whose birthday it is (the recipient)."""
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    zone: Mapped[str] = mapped_column(String(64))
    marketplace: Mapped[str] = mapped_column(String(2))
    amount: Mapped[minor_units]
    channel: Mapped[ProgramChannel] = mapped_column(EnumText(ProgramChannel, 8))
    design: Mapped[str] = mapped_column(String(32))
    message_template: Mapped[str] = mapped_column(Text)
    """The personal message, ``{name}`` replaced by the person's name."""
    send_time: Mapped[str] = mapped_column(String(5))
    """Local ``HH:MM`` on the birthday."""
    purchaser_name: Mapped[str] = mapped_column(String(100))
    purchaser_email: Mapped[str] = mapped_column(String(320))
    status: Mapped[ProgramStatus] = mapped_column(EnumText(ProgramStatus, 8), default=ProgramStatus.ACTIVE)
    next_year: Mapped[int] = mapped_column(Integer)
    """The next birthday year to place (every earlier year has a placement row or predates it)."""
    next_place_at: Mapped[utc_datetime]
    """When that year's gift is to be placed: the send instant less the lead time."""
    import_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """The CSV row it came from (``row_id`` or a hash of the row): a second import adds nothing."""
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[utc_datetime] = mapped_column(default=utcnow)


class ProgramPlacement(Base):
    __tablename__ = "program_placements"
    __table_args__ = (
        UniqueConstraint("program_id", "year"),
        CheckConstraint(
            "(order_id IS NOT NULL AND skip_reason IS NULL)"
            " OR (order_id IS NULL AND skip_reason IS NOT NULL)",
            name="placed_or_skipped",
        ),
        CheckConstraint(sql_in("skip_reason", list(SkipReason)), name="skip_reason"),
        Index(None, "skip_reason", "created_at"),
    )

    id: Mapped[bigid_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("birthday_programs.id"))
    year: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    skip_reason: Mapped[SkipReason | None] = mapped_column(EnumText(SkipReason, 16))
    detail: Mapped[str | None] = mapped_column(Text)
    send_at: Mapped[utc_datetime]
    """That year's send instant (UTC)."""
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
