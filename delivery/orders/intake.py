"""Intake: the one function every door calls (Python, the Celery task, later HTTP).

:func:`place_order` validates the whole request, writes the order and its lines in one
transaction, and enqueues issuance after that transaction commits. It is idempotent by
key: the same key with the same order returns the first result; with another order it
raises :class:`~delivery.errors.IdempotencyConflict`. Bad input raises
:class:`~delivery.errors.InvalidOrder` naming every bad field, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from delivery.errors import IdempotencyConflict
from delivery.models import Order, OrderLine, OrderStatus
from delivery.orders import schemas
from delivery.outbox import enqueue_after_commit
from giftq.db import insert_new, session_factory, utcnow


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order_id: int
    status: str
    created: bool
    """False when the key was seen before and this is the first call's order."""

    def as_dict(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "status": self.status, "created": self.created}


def request_hash(order: schemas.Order) -> str:
    canonical = json.dumps(order.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def place_order(order: Any, *, idempotency_key: Any, session: Session | None = None) -> PlacedOrder:
    """Place an order (a dict, JSON text or :class:`delivery.orders.schemas.Order`).

    With ``session``, the order joins the caller's transaction and issuance is enqueued
    when the caller commits; without, it commits its own.
    """
    parsed, key = schemas.parse_request(order, idempotency_key)
    if session is not None:
        return _place(session, parsed, key)
    with session_factory().begin() as own:
        return _place(own, parsed, key)


def _place(session: Session, order: schemas.Order, key: str) -> PlacedOrder:
    digest = request_hash(order)
    # One round trip decides: a new order, or the key was seen (then read the first one).
    order_id = _insert(session, order, key, digest)
    if order_id is None:
        existing = session.scalars(select(Order).where(Order.idempotency_key == key)).one()
        return _replay(existing, digest)
    enqueue_after_commit(session, "giftq.process_order", {"order_id": order_id})
    return PlacedOrder(order_id, OrderStatus.RECEIVED, created=True)


def _replay(existing: Order, digest: str) -> PlacedOrder:
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            f"idempotency key already used for order {existing.id} with a different order"
        )
    return PlacedOrder(existing.id, existing.status, created=False)


def _insert(session: Session, order: schemas.Order, key: str, digest: str) -> int | None:
    """Insert the order unless its key is taken (then None), and its lines."""
    now = utcnow()
    order_id: int | None = insert_new(
        session,
        Order,
        {
            "idempotency_key": key,
            "request_hash": digest,
            "reference": order.reference,
            "status": OrderStatus.RECEIVED,
            "purchaser_name": order.purchaser.name,
            "purchaser_email": order.purchaser.email,
            "purchaser_locale": order.purchaser.locale,
            "line_count": len(order.lines),
            "error": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    if order_id is not None:
        session.execute(
            insert(OrderLine),
            [_line_values(order_id, position, line, now) for position, line in enumerate(order.lines)],
        )
    return order_id


def _line_values(order_id: int, position: int, line: schemas.OrderLine, now: Any) -> dict[str, Any]:
    recipient = line.recipient
    return {
        "order_id": order_id,
        "position": position,
        "channel": str(line.channel),
        "amount": line.amount,
        "marketplace": line.marketplace,
        "design": line.design,
        "message": line.message,
        "recipient_name": recipient.name,
        "recipient_email": recipient.email,
        "recipient_locale": recipient.locale,
        "recipient_phone": recipient.phone,
        "recipient_address": recipient.address.model_dump() if recipient.address else None,
        "send_at_local": line.send_at.local_time.isoformat() if line.send_at else None,
        "send_at_zone": line.send_at.zone if line.send_at else None,
        "due_at": line.send_at.due_at() if line.send_at else now,
    }
