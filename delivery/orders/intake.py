"""Intake: the one function every door calls (Python, the Celery task, later HTTP).

:func:`place_order` validates the whole request, writes the order and its lines in one
transaction, and enqueues issuance after that transaction commits. It is idempotent by
key: the same key with the same order returns the first result; with another order it
raises :class:`~delivery.errors.IdempotencyConflict`. Bad input raises
:class:`~delivery.errors.InvalidOrder` naming every bad field, before anything is written;
an order past a marketplace's limit raises its subclass
:class:`~delivery.errors.OrderOverLimit` (:mod:`delivery.orders.limits`).

An order placed with ``"payment": "pending"`` or ``"review": true`` is held
(:mod:`delivery.orders.holds`): written, but nothing is enqueued until the hold ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.errors import IdempotencyConflict
from delivery.models import Order, OrderLine, OrderStatus, PaymentState, ReviewState
from delivery.orders import limits, schemas
from delivery.outbox import enqueue_after_commit
from giftq.db import session_factory, utcnow
from giftq.settings import get_settings


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order_id: int
    status: str
    created: bool
    """False when the key was seen before and this is the first call's order."""

    def as_dict(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "status": self.status, "created": self.created}


def request_hash(order: schemas.Order) -> str:
    data = order.model_dump(mode="json")
    # An order that asks for no hold, and lines of purchased cards, hash as they did before
    # holds and card origins existed: a key placed then and replayed now is the same request.
    for name, default in schemas.HOLD_DEFAULTS.items():
        if data[name] == default:
            del data[name]
    for line in data["lines"]:
        for name, default in schemas.LINE_DEFAULTS.items():
            if line[name] == default:
                del line[name]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
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
    existing = _by_key(session, key)
    if existing is not None:
        return _replay(existing, digest)
    now = utcnow()
    limits.check(session, order, now=now)
    status = held_status(order)
    try:
        with session.begin_nested():
            order_id = _insert(session, order, key=key, digest=digest, status=status, now=now)
    except IntegrityError:
        # Another request with this key committed between our look-up and insert.
        existing = _by_key(session, key)
        if existing is None:
            raise
        return _replay(existing, digest)
    if status == OrderStatus.RECEIVED:
        enqueue_after_commit(session, "giftq.process_order", {"order_id": order_id})
    return PlacedOrder(order_id, status, created=True)


def held_status(order: schemas.Order) -> OrderStatus:
    """Where an order starts: held for its payment first, then for a review, else received."""
    if order.payment == "pending":
        return OrderStatus.AWAITING_PAYMENT
    if order.review:
        return OrderStatus.IN_REVIEW
    return OrderStatus.RECEIVED


def _by_key(session: Session, key: str) -> Order | None:
    return session.scalars(select(Order).where(Order.idempotency_key == key)).one_or_none()


def _replay(existing: Order, digest: str) -> PlacedOrder:
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            f"idempotency key already used for order {existing.id} with a different order"
        )
    return PlacedOrder(existing.id, existing.status, created=False)


def _insert(
    session: Session, order: schemas.Order, *, key: str, digest: str, status: OrderStatus, now: dt.datetime
) -> int:
    pending = order.payment == "pending"
    row = Order(
        idempotency_key=key,
        request_hash=digest,
        reference=order.reference,
        status=status,
        purchaser_name=order.purchaser.name,
        purchaser_email=order.purchaser.email,
        purchaser_key=limits.purchaser_key(order.purchaser.email),
        purchaser_locale=order.purchaser.locale,
        purchaser_country=order.purchaser.country,
        line_count=len(order.lines),
        payment=PaymentState.PENDING if pending else None,
        payment_due_at=now + dt.timedelta(seconds=get_settings().payment_deadline_seconds)
        if pending
        else None,
        review=ReviewState.PENDING if order.review else None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    session.execute(
        insert(OrderLine),
        [_line_values(row.id, position, line, now) for position, line in enumerate(order.lines)],
    )
    return row.id


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
        "origin": str(line.origin),
    }
