"""Held orders as ops see them (``giftq ops held``): what each waits for, and its gifts' days.

A held order has no card and no delivery, so a scheduled gift of it is not sent on its
day: :func:`list_held` shows, per order, when its first scheduled gift is due and how many
are past their send time (``overdue_gifts``), so that ops chase the payment or
finish the review. Oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from delivery.models import HELD, Order, OrderLine

DUE_SOON = dt.timedelta(hours=24)
"""A held order's gift due within this is flagged as due soon."""


@dataclass(frozen=True, slots=True)
class HeldView:
    id: int
    reference: str | None
    status: str
    payment: str | None
    review: str | None
    purchaser_email: str
    created_at: dt.datetime
    payment_due_at: dt.datetime | None
    """When the order is cancelled if its payment is not confirmed by then."""
    lines: int
    first_scheduled_at: dt.datetime | None
    """When its earliest scheduled gift is due; None when every gift goes at once."""
    overdue_gifts: int
    """Scheduled gifts whose send time has passed while the order was held."""
    due_soon: bool
    """A scheduled gift is due within :data:`DUE_SOON` (or already overdue)."""


def list_held(session: Session, *, now: dt.datetime, limit: int = 100) -> list[HeldView]:
    scheduled = OrderLine.send_at_zone.is_not(None)
    first = func.min(case((scheduled, OrderLine.due_at)))
    overdue = func.sum(case((and_(scheduled, OrderLine.due_at <= now), 1), else_=0))
    rows = session.execute(
        select(Order, func.count(OrderLine.id), first, overdue)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.status.in_(sorted(HELD)))
        .group_by(Order.id)
        .order_by(Order.created_at, Order.id)
        .limit(limit)
    ).all()
    return [
        HeldView(
            id=order.id,
            reference=order.reference,
            status=str(order.status),
            payment=str(order.payment) if order.payment else None,
            review=str(order.review) if order.review else None,
            purchaser_email=order.purchaser_email,
            created_at=order.created_at,
            payment_due_at=order.payment_due_at,
            lines=int(count),
            first_scheduled_at=earliest,
            overdue_gifts=int(late or 0),
            due_soon=earliest is not None and earliest <= now + DUE_SOON,
        )
        for order, count, earliest, late in rows
    ]
