"""The download-link table: one row per link a purchaser was given to fetch a printable.

A row names the delivery and counts downloads; it holds no claim code and no token (the
token is an HMAC over the row's id, delivery and expiry: it can be made again from the
row and the key, and proves nothing without the key).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, bigid_pk, utc_datetime, utcnow


class PrintableLink(Base):
    __tablename__ = "printable_links"
    __table_args__ = (
        CheckConstraint("max_uses > 0", name="max_uses_positive"),
        CheckConstraint("uses >= 0 AND uses <= max_uses", name="uses_in_range"),
    )

    id: Mapped[bigid_pk]
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("deliveries.id"), index=True)
    expires_at: Mapped[utc_datetime]
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    """Downloads so far; raised only by one conditional UPDATE (``links.redeem_link``)."""
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
