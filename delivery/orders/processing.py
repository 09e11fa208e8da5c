"""Processing: issue an order's cards and create one delivery row per send.

An order's cards are issued in one ledger transaction; a bulk order of thousands of
lines goes in chunks of ``GIFTQ_ISSUE_CHUNK_SIZE`` lines, one database transaction
each (the ledger call, the lines' card ids and their deliveries commit together), so
that a crash loses at most the chunk in flight and a rerun resumes at the first line
without a card. A line with a card is never issued again; the ledger's idempotency key
per chunk is a second guard.

Physical cards are issued inactive (activated when fulfilment reports them shipped), and
their gifts are due at the vendor's next cut-off (:mod:`delivery.channels.physical.cutoff`).
Gifts due now are queued at once for their channel's workers; later ones stay
``scheduled`` for the due dispatcher, and so do the gifts of a channel that has no back
end configured here (listed by ``giftq ops failures`` as waiting).

Many small orders go through together (:func:`issue_ready_orders`): one claim of every
ready order (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers share the backlog;
SQLite's ``BEGIN IMMEDIATE`` serialises them), one ledger call and transaction for all
their cards, one INSERT of all their deliveries and one send batch per channel, in which
the purchasers' receipts ride with the gifts. A one-line storefront order costs a few
statements shared with hundreds of others instead of a task and fifteen round trips of
its own. Each order keeps its own outcome: its lines get cards once (a line with a card
is never issued again), its receipt is created with its last chunk, and an order whose
cards the ledger refuses fails alone (:func:`issue_next_chunk`, one order at a time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from delivery.channels import registry
from delivery.channels.physical.cutoff import next_cutoff
from delivery.errors import NotFound
from delivery.metrics import instruments
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine, OrderStatus, new_delivery_row
from delivery.outbox import enqueue_deliveries
from delivery.states import DeliveryStatus
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger import CardSpec, issue_cards

PROCESSABLE: tuple[OrderStatus, ...] = (OrderStatus.RECEIVED, OrderStatus.ISSUING)
"""The statuses whose orders get their cards issued: the one filter every claim of ready
orders uses (an order held for any other reason is never picked up)."""


@dataclass(frozen=True, slots=True)
class Progress:
    order_id: int
    status: str
    issued: int
    """Cards issued by this call."""

    @property
    def done(self) -> bool:
        return self.status not in PROCESSABLE


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """What one :func:`issue_ready_orders` call did."""

    orders: int
    """Orders claimed."""
    finished: int
    """Orders whose last card was issued by this call."""
    issued: int
    """Cards issued by this call."""
    more: bool
    """The chunk was full: more ready lines may be waiting."""


def card_reference(order_id: int, position: int) -> str:
    return f"giftq:order:{order_id}:line:{position}"


def issue_next_chunk(session: Session, order_id: int, *, chunk_size: int | None = None) -> Progress:
    """Issue the next chunk of one order's cards in the caller's transaction."""
    order = session.scalars(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status not in PROCESSABLE:
        return Progress(order.id, order.status, 0)
    issued, _, _ = _issue_chunk(session, [order], chunk_size or get_settings().issue_chunk_size)
    return Progress(order.id, order.status, issued)


def issue_ready_orders(session: Session, *, chunk_size: int | None = None) -> BatchProgress:
    """Claim the oldest ready orders and issue the next chunk of their cards, together.

    Up to ``chunk_size`` (``GIFTQ_ISSUE_CHUNK_SIZE``) cards, from as many orders as that
    takes, oldest first, in the caller's transaction. Orders another worker holds are
    skipped (PostgreSQL); a ledger refusal raises and leaves everything to the caller's
    rollback (then :func:`issue_next_chunk` takes the orders one at a time).
    """
    size = chunk_size or get_settings().issue_chunk_size
    orders = list(
        session.scalars(
            select(Order)
            .where(Order.status.in_(PROCESSABLE))
            .order_by(Order.id)
            .limit(size)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    if not orders:
        return BatchProgress(0, 0, 0, more=False)
    issued, finished, full = _issue_chunk(session, orders, size)
    return BatchProgress(len(orders), finished, issued, more=full)


def ready_order_ids(session: Session, *, limit: int) -> list[int]:
    """The oldest ready orders' ids (for taking them one at a time)."""
    query = select(Order.id).where(Order.status.in_(PROCESSABLE)).order_by(Order.id).limit(limit)
    return list(session.scalars(query))


def _issue_chunk(session: Session, orders: Sequence[Order], size: int) -> tuple[int, int, bool]:
    """Issue up to ``size`` cards of the locked ``orders`` (oldest lines first), create
    their deliveries and move the orders on; returns (cards, orders finished, chunk full)."""
    by_id = {order.id: order for order in orders}
    lines = list(
        session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id.in_(list(by_id)), OrderLine.card_id.is_(None))
            .order_by(OrderLine.order_id, OrderLine.position)
            .limit(size)
        )
    )
    full = len(lines) == size
    now = utcnow()
    # Lines come ordered by order: each order before the last one's got all it had left.
    # The last one's is finished unless the chunk was full and more of its lines wait.
    # Orders after it got nothing this time and stay as they are.
    last_order = lines[-1].order_id if full else None
    finished = [
        order
        for order in orders
        if last_order is None
        or order.id < last_order
        or (order.id == last_order and not _lines_left(session, order.id, lines[-1].position))
    ]
    rows = _issue(session, by_id, lines, now) if lines else []
    rows += [_confirmation(order, now) for order in finished]
    # The chunk's deliveries and the finished orders' receipts: one INSERT.
    if rows:
        ids = session.scalars(insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), rows)
        queued: dict[str, list[int]] = {}
        for delivery_id, row in zip(ids, rows, strict=True):
            if row["status"] == DeliveryStatus.QUEUED:
                queued.setdefault(str(row["channel"]), []).append(delivery_id)
        for channel, delivery_ids in queued.items():
            enqueue_deliveries(session, channel, delivery_ids)
    touched = {line.order_id for line in lines}
    done = {order.id for order in finished}
    for order in orders:
        if order.id in done:
            order.status = OrderStatus.ISSUED
        elif order.id in touched:
            order.status = OrderStatus.ISSUING
        else:
            continue
        order.updated_at = now
    session.flush()
    if finished:
        instruments.after_commit(session, instruments.ORDERS, len(finished), outcome="issued")
    return len(lines), len(finished), full


def _lines_left(session: Session, order_id: int, after: int) -> bool:
    query = select(
        exists().where(
            OrderLine.order_id == order_id, OrderLine.card_id.is_(None), OrderLine.position > after
        )
    )
    return bool(session.scalar(query))


def _issue(
    session: Session, orders: dict[int, Order], lines: Sequence[OrderLine], now: dt.datetime
) -> list[dict[str, Any]]:
    """Issue the cards of ``lines`` (one ledger call); returns their gift deliveries' values."""
    specs = [
        CardSpec(
            marketplace=line.marketplace,
            amount=line.amount,
            active=line.channel != Channel.PHYSICAL,
            reference=card_reference(line.order_id, line.position),
            origin=line.origin,
        )
        for line in lines
    ]
    # Never the same key for two requests: a line gets its card once, so a later chunk
    # never starts at the same line (lines of several orders: their ids span them).
    first, last = lines[0], lines[-1]
    if first.order_id == last.order_id:
        key = f"giftq:order:{first.order_id}:lines:{first.position}-{last.position}"
    else:
        key = f"giftq:lines:{first.id}-{last.id}:{len(lines)}"
    cards = issue_cards(session, specs, idempotency_key=key)
    for currency in {card.currency for card in cards}:
        issued = sum(1 for card in cards if card.currency == currency)
        instruments.after_commit(session, instruments.CARDS_ISSUED, issued, currency=currency)
    # One executemany for the chunk (the ORM would flush one UPDATE per line).
    session.execute(
        update(OrderLine),
        [
            {"id": line.id, "card_id": card.card_id, "card_last4": card.last4}
            for line, card in zip(lines, cards, strict=True)
        ],
    )
    return [
        gift_delivery(line, card.card_id, to_address=_address(line, orders[line.order_id]), now=now)
        for line, card in zip(lines, cards, strict=True)
    ]


def _address(line: OrderLine, order: Order) -> str | None:
    if line.channel == Channel.SMS:
        return line.recipient_phone
    if line.channel == Channel.PHYSICAL:
        return None
    if line.channel == Channel.PRINTABLE:
        # A card to print goes to the person who prints it and hands it over.
        return order.purchaser_email
    return line.recipient_email


def gift_delivery(
    line: OrderLine,
    card_id: int,
    *,
    to_address: str | None,
    now: dt.datetime,
    parent_id: int | None = None,
    to_name: str | None = None,
) -> dict[str, Any]:
    """Values of a new gift delivery: queued if it can go now, else scheduled.

    A channel with no back end configured here keeps its gifts ``scheduled``: the due
    dispatcher releases them once one is, and ops see them waiting meanwhile.
    """
    due = max(line.due_at, now)
    if line.channel == Channel.PHYSICAL:
        # Physical cards go to the vendor in batches: each is due at the next cut-off.
        due = next_cutoff(due)
    ready = Channel(line.channel) in registry.configured() and due <= now
    return new_delivery_row(
        order_id=line.order_id,
        line_id=line.id,
        card_id=card_id,
        kind=DeliveryKind.GIFT,
        channel=Channel(line.channel),
        status=DeliveryStatus.QUEUED if ready else DeliveryStatus.SCHEDULED,
        to_name=to_name or line.recipient_name,
        to_address=to_address,
        due_at=due,
        now=now,
        parent_id=parent_id,
    )


def _confirmation(order: Order, now: dt.datetime) -> dict[str, Any]:
    """The order confirmation to the purchaser: the receipt, sent as soon as all is issued."""
    return new_delivery_row(
        order_id=order.id,
        kind=DeliveryKind.CONFIRMATION,
        channel=Channel.EMAIL,
        to_name=order.purchaser_name,
        to_address=order.purchaser_email,
        due_at=now,
        now=now,
    )


def mark_failed(session: Session, order_id: int, error: str) -> None:
    """Issuance was refused for good: record why; no more of its cards are issued."""
    failed = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(PROCESSABLE))
        .values(status=OrderStatus.FAILED, error=error[:2000], updated_at=utcnow())
    )
    if failed.rowcount:  # type: ignore[attr-defined]
        instruments.after_commit(session, instruments.ORDERS, outcome="failed")
