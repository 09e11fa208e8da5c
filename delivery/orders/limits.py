"""Intake's limits per marketplace (the data: :mod:`ledger.limits`).

:func:`check` refuses an order with :class:`~delivery.errors.OrderOverLimit` naming every
limit it goes past, each with the limit and the amount written in the currency:

- a card below the marketplace's minimum or above its maximum (``lines.N.amount``);
- the order's cards of one marketplace adding up to more than its maximum order total;
- a purchaser's cards of one marketplace in the last 24 hours, this order's included,
  above its maximum a day. The purchaser is their email address, lower-cased; earlier
  orders count unless they were cancelled or failed (a held order counts).

The count runs inside intake's transaction, after a lock on the purchaser: PostgreSQL
takes a transaction-scoped advisory lock on the purchaser's key, and SQLite's
``BEGIN IMMEDIATE`` lets one writer in at a time, so two orders of one purchaser placed
at once are counted one after the other and cannot both slip under the limit.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from delivery.errors import LimitBreach, OrderOverLimit
from delivery.models import Order, OrderLine, OrderStatus
from delivery.orders import schemas
from giftq.db import is_sqlite
from ledger.limits import Limits, limits_for
from ledger.marketplaces import get_marketplace, plain_amount

DAY = dt.timedelta(hours=24)
NOT_COUNTED = (OrderStatus.CANCELLED, OrderStatus.FAILED)


def purchaser_key(email: str) -> str:
    return email.strip().lower()


def counts_the_day(order: schemas.Order) -> bool:
    """Whether :func:`check` counts the purchaser's earlier cards (a query, and a lock on
    PostgreSQL) for a marketplace of ``order``: then intake runs in a transaction."""
    return any(limits_for(line.marketplace).max_cards_per_day is not None for line in order.lines)


def check(session: Session, order: schemas.Order, *, now: dt.datetime) -> None:
    """Raise :class:`OrderOverLimit` if ``order`` goes past a limit (call it in intake's transaction)."""
    breaches: list[LimitBreach] = []
    totals: Counter[str] = Counter()
    cards: Counter[str] = Counter()
    for position, line in enumerate(order.lines):
        limits = limits_for(line.marketplace)
        path = f"order.lines.{position}.amount"
        if limits.min_card is not None and line.amount < limits.min_card:
            breaches.append(_breach(limits, "min_card", line.amount, path, "card amount"))
        if limits.max_card is not None and line.amount > limits.max_card:
            breaches.append(_breach(limits, "max_card", line.amount, path, "card amount"))
        totals[line.marketplace] += line.amount
        cards[line.marketplace] += 1
    for marketplace, total in totals.items():
        limits = limits_for(marketplace)
        if limits.max_order_total is not None and total > limits.max_order_total:
            what = f"order total of the {marketplace} cards"
            breaches.append(_breach(limits, "max_order_total", total, "order.lines", what))
    daily = {m: n for m, n in cards.items() if limits_for(m).max_cards_per_day is not None}
    if daily:
        key = purchaser_key(order.purchaser.email)
        earlier = _cards_since(session, key, now - DAY, sorted(daily))
        for marketplace, count in daily.items():
            limits = limits_for(marketplace)
            most = limits.max_cards_per_day
            assert most is not None
            total = earlier.get(marketplace, 0) + count
            if total > most:
                breaches.append(
                    LimitBreach(
                        "max_cards_per_day",
                        marketplace,
                        get_marketplace(marketplace).currency,
                        most,
                        total,
                        "order.purchaser.email",
                        f"{total:,} {marketplace} cards for this purchaser in 24 hours "
                        f"({earlier.get(marketplace, 0):,} ordered before) is above the {marketplace} "
                        f"maximum of {most:,} a day",
                    )
                )
    if breaches:
        raise OrderOverLimit(breaches)


def _breach(limits: Limits, limit: str, amount: int, path: str, what: str) -> LimitBreach:
    side, bound = ("below", "minimum") if limit.startswith("min_") else ("above", "maximum")
    value = getattr(limits, limit)
    market = limits.marketplace
    return LimitBreach(
        limit,
        market,
        get_marketplace(market).currency,
        value,
        amount,
        path,
        f"{what} {plain_amount(amount, market)} is {side} the {market} {bound} "
        f"of {plain_amount(value, market)}",
    )


def _cards_since(session: Session, key: str, since: dt.datetime, marketplaces: list[str]) -> dict[str, int]:
    if not is_sqlite(session):
        # Held until intake's transaction ends: the next order of this purchaser counts this one.
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext("giftq:purchaser:" + key))))
    rows = session.execute(
        select(OrderLine.marketplace, func.count())
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.purchaser_key == key,
            Order.created_at > since,
            Order.status.not_in(NOT_COUNTED),
            OrderLine.marketplace.in_(marketplaces),
        )
        .group_by(OrderLine.marketplace)
    )
    return {marketplace: int(n) for marketplace, n in rows}
