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
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select, true, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from delivery.errors import IdempotencyConflict, OrderOverLimit
from delivery.models import Order, OrderLine, OrderStatus, PaymentState, ReviewState
from delivery.orders import limits, schemas
from delivery.outbox import enqueue_after_commit
from giftq.db import insert_new, is_sqlite, session_factory, utcnow
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


# Orders up to this many lines go in as one statement on PostgreSQL (one bound value per
# column of each line; a statement takes at most 65,535); bigger ones in two.
ONE_STATEMENT_MAX_LINES = 1000


def place_order(order: Any, *, idempotency_key: Any, session: Session | None = None) -> PlacedOrder:
    """Place an order (a dict, JSON text or :class:`delivery.orders.schemas.Order`).

    With ``session``, the order joins the caller's transaction and issuance is enqueued
    when the caller commits; without, it commits its own.
    """
    parsed, key = schemas.parse_request(order, idempotency_key)
    if session is not None:
        return _place(session, parsed, key)
    with session_factory()() as own:
        if _one_statement(own, parsed) and not limits.counts_the_day(parsed):
            # That statement is a transaction of its own: no BEGIN and COMMIT round trips
            # (a per-day limit counts the purchaser's orders first, in a transaction).
            own.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        placed = _place(own, parsed, key)
        own.commit()  # publishes the message (delivery.outbox), after the row is there
        return placed


def _one_statement(session: Session, order: schemas.Order) -> bool:
    return not is_sqlite(session) and len(order.lines) <= ONE_STATEMENT_MAX_LINES


def _place(session: Session, order: schemas.Order, key: str) -> PlacedOrder:
    digest = request_hash(order)
    now = utcnow()
    try:
        limits.check(session, order, now=now)
    except OrderOverLimit:
        # A retry of an order placed before counts itself in the day's cards: answer it.
        existing = _by_key(session, key)
        if existing is None:
            raise
        return _replay(existing, digest)
    status = held_status(order)
    # One round trip decides: a new order, or the key was seen (then read the first one).
    order_id = _insert(session, order, key=key, digest=digest, status=status, now=now)
    if order_id is None:
        existing = _by_key(session, key)
        assert existing is not None
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
) -> int | None:
    """Insert the order and its lines unless its key is taken (then None)."""
    pending = order.payment == "pending"
    values = {
        "idempotency_key": key,
        "request_hash": digest,
        "reference": order.reference,
        "status": status,
        "purchaser_name": order.purchaser.name,
        "purchaser_email": order.purchaser.email,
        "purchaser_key": limits.purchaser_key(order.purchaser.email),
        "purchaser_locale": order.purchaser.locale,
        "purchaser_country": order.purchaser.country,
        "line_count": len(order.lines),
        "error": None,
        "payment": PaymentState.PENDING if pending else None,
        "payment_due_at": now + dt.timedelta(seconds=get_settings().payment_deadline_seconds)
        if pending
        else None,
        "review": ReviewState.PENDING if order.review else None,
        "created_at": now,
        "updated_at": now,
    }
    lines = [_line_values(position, line, now) for position, line in enumerate(order.lines)]
    if _one_statement(session, order):
        return _insert_as_one(session, values, lines)
    order_id: int | None = insert_new(session, Order, values)
    if order_id is not None:
        session.execute(insert(OrderLine), [{"order_id": order_id, **line} for line in lines])
    return order_id


def _insert_as_one(session: Session, values: dict[str, Any], lines: list[dict[str, Any]]) -> int | None:
    """PostgreSQL: the order (unless its key is taken) and its lines in one statement."""
    names = tuple(lines[0])
    parameters = {**values, **{f"{name}_{i}": row[name] for i, row in enumerate(lines) for name in names}}
    order_id: int | None = session.scalars(
        _one_statement_insert(tuple(values), names, len(lines)), parameters
    ).first()
    return order_id


@lru_cache(maxsize=64)
def _one_statement_insert(order_names: tuple[str, ...], line_names: tuple[str, ...], count: int) -> Any:
    """``WITH new_order AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id) INSERT INTO
    order_lines SELECT new_order.id, line.* FROM new_order JOIN (SELECT ...) line``, with
    named parameters, built once per number of lines (so SQLAlchemy compiles it once).

    On the tables, not the mapped classes: the ORM would read the parameters as rows.
    """
    orders, order_lines = Order.metadata.tables["orders"], OrderLine.metadata.tables["order_lines"]
    new_order = (
        postgresql.insert(orders)
        .values({name: bindparam(name, type_=orders.c[name].type) for name in order_names})
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(orders.c.id)
        .cte("new_order")
    )
    columns = order_lines.c
    # SELECTs of parameters, not a VALUES list: SQLAlchemy cannot cache a statement with one.
    rows = [
        select(*(bindparam(f"{name}_{i}", type_=columns[name].type).label(name) for name in line_names))
        for i in range(count)
    ]
    line = (rows[0] if count == 1 else union_all(*rows)).subquery("line")
    return (
        insert(order_lines)
        .from_select(
            ["order_id", *line_names], select(new_order.c.id, *line.c).join_from(new_order, line, true())
        )
        .returning(order_lines.c.order_id)
        .add_cte(new_order)
    )


def _line_values(position: int, line: schemas.OrderLine, now: Any) -> dict[str, Any]:
    recipient = line.recipient
    return {
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
