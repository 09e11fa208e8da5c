"""The purchaser's country of each card an order issued, for the liability report.

An order line points at its current card (after a reissue or a swap, the new one), so a
card's purchaser is its line's order's. Orders that gave no ``purchaser.country`` are left
out: the report falls back to the card's marketplace's country for them.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from delivery.models import Order, OrderLine


def purchaser_countries() -> Select[int | None, str | None]:
    """``(card_id, country)`` for every issued card whose order names the purchaser's country."""
    return (
        select(OrderLine.card_id.label("card_id"), Order.purchaser_country.label("country"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.card_id.is_not(None), Order.purchaser_country.is_not(None))
    )
