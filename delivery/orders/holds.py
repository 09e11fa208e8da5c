"""Held orders: placed, but nothing is issued or sent until the hold ends.

An order placed with ``"payment": "pending"`` waits in ``awaiting_payment`` for the
storefront's answer; one placed with ``"review": true`` (or put on review by ops before
its cards are issued) waits in ``in_review`` for ops. An order held both ways waits for
its payment first, then for the review. When no hold is left it becomes ``received`` and
issuance is enqueued after commit, as for an order placed paid; a scheduled gift whose
day passed meanwhile goes at once.

A held order that ends otherwise (payment declined, payment overdue, review rejected,
cancelled by ops) is ``cancelled`` with nothing issued, and its purchaser gets a notice
(a ``cancelled_notice`` delivery) that says why. Each answer is idempotent: the same
answer again changes nothing and says so (``changed`` False).

- :func:`confirm_payment`, :func:`decline_payment`: the storefront's answers (Python; the
  ``giftq.confirm_payment`` / ``giftq.decline_payment`` tasks; ``POST /v1/orders/{id}/payment``).
- :func:`hold_for_review`, :func:`release_review`, :func:`reject_review`: ops.
- :func:`expire_overdue`: beat cancels orders whose payment is past its deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import notices
from delivery.errors import HoldRefused, NotFound, OpsRefused
from delivery.metrics import instruments
from delivery.models import (
    Channel,
    DeliveryKind,
    Order,
    OrderStatus,
    PaymentState,
    ReviewState,
    new_delivery_row,
)
from delivery.outbox import enqueue_after_commit
from delivery.reasons import CancelReason
from giftq.db import session_factory, utcnow
from giftq.settings import variable


@dataclass(frozen=True, slots=True)
class HoldAnswer:
    order_id: int
    status: str
    payment: str | None
    review: str | None
    changed: bool
    """False when the order already was as asked (a repeated answer)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "status": self.status,
            "payment": self.payment,
            "review": self.review,
            "changed": self.changed,
        }


def _answer(order: Order, changed: bool) -> HoldAnswer:
    payment = str(order.payment) if order.payment else None
    review = str(order.review) if order.review else None
    return HoldAnswer(order.id, str(order.status), payment, review, changed)


def _in_own_transaction(work: Callable[[Session], HoldAnswer], session: Session | None) -> HoldAnswer:
    if session is not None:
        return work(session)
    with session_factory().begin() as own:
        return work(own)


def _locked(session: Session, order_id: int) -> Order:
    order = session.scalars(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}")
    return order


def _settle(session: Session, order: Order, now: dt.datetime) -> None:
    """The hold that is left, or none: then the order is received and issuance enqueued."""
    if order.payment == PaymentState.PENDING:
        order.status = OrderStatus.AWAITING_PAYMENT
    elif order.review == ReviewState.PENDING:
        order.status = OrderStatus.IN_REVIEW
    else:
        order.status = OrderStatus.RECEIVED
        enqueue_after_commit(session, "giftq.process_order", {"order_id": order.id})
    order.updated_at = now
    session.flush()


def cancel_held(session: Session, order: Order, reason: CancelReason, error: str, now: dt.datetime) -> None:
    """Cancel a held order (nothing of it is issued) and tell its purchaser why."""
    order.status = OrderStatus.CANCELLED
    order.error = error
    order.updated_at = now
    session.flush()
    notice = new_delivery_row(
        order_id=order.id,
        kind=DeliveryKind.CANCELLED_NOTICE,
        channel=Channel.EMAIL,
        to_name=order.purchaser_name,
        to_address=order.purchaser_email,
        due_at=now,
        now=now,
        reason=reason,
    )
    notices.add(session, [notice])
    instruments.after_commit(session, instruments.ORDERS, outcome="cancelled")


# --- the storefront's answers -------------------------------------------------------------


def confirm_payment(order_id: int, *, session: Session | None = None) -> HoldAnswer:
    """The payment cleared: issue the order (or hand it to its review)."""
    return _in_own_transaction(lambda s: _confirm(s, order_id), session)


def _confirm(session: Session, order_id: int) -> HoldAnswer:
    order = _locked(session, order_id)
    if order.payment == PaymentState.CONFIRMED:
        return _answer(order, changed=False)
    if order.payment is None:
        raise HoldRefused(f"order {order_id} was not placed awaiting payment (it is {order.status})")
    if order.payment != PaymentState.PENDING:
        raise HoldRefused(f"order {order_id} is cancelled: its payment was {order.payment}")
    if order.status == OrderStatus.CANCELLED:
        # Cancelled by ops (or in its review) while it waited: a late payment does not revive it.
        raise HoldRefused(f"order {order_id} is cancelled: {order.error}")
    order.payment = PaymentState.CONFIRMED
    _settle(session, order, utcnow())
    return _answer(order, changed=True)


def decline_payment(order_id: int, *, session: Session | None = None) -> HoldAnswer:
    """The payment did not go through: cancel the order and tell the purchaser."""
    return _in_own_transaction(lambda s: _decline(s, order_id), session)


def _decline(session: Session, order_id: int) -> HoldAnswer:
    order = _locked(session, order_id)
    if order.payment in (PaymentState.DECLINED, PaymentState.OVERDUE) or (
        order.payment == PaymentState.PENDING and order.status == OrderStatus.CANCELLED
    ):
        return _answer(order, changed=False)
    if order.payment is None:
        raise HoldRefused(f"order {order_id} was not placed awaiting payment (it is {order.status})")
    if order.payment == PaymentState.CONFIRMED:
        raise HoldRefused(
            f"order {order_id}'s payment was confirmed before; cancelling it now is ops' "
            f"(POST /v1/orders/{order_id}/cancel)"
        )
    order.payment = PaymentState.DECLINED
    cancel_held(session, order, CancelReason.PAYMENT_DECLINED, "payment declined by the storefront", utcnow())
    return _answer(order, changed=True)


# --- ops: the fraud review ----------------------------------------------------------------

REVIEWABLE = (OrderStatus.RECEIVED, OrderStatus.AWAITING_PAYMENT, OrderStatus.IN_REVIEW)
"""An order is put on review only before any card of it is issued."""


def hold_for_review(session: Session, order_id: int) -> HoldAnswer:
    """Hold an order whose cards are not issued yet until ops release or reject it."""
    order = _locked(session, order_id)
    if order.review == ReviewState.PENDING:
        return _answer(order, changed=False)
    if order.status not in REVIEWABLE:
        raise OpsRefused(
            f"order {order_id} is {order.status}: only an order with no card issued yet can be held "
            "for review (cancel it instead)"
        )
    order.review = ReviewState.PENDING
    _settle(session, order, utcnow())
    return _answer(order, changed=True)


def release_review(session: Session, order_id: int) -> HoldAnswer:
    """The review found nothing wrong: issue the order (or wait for its payment)."""
    order = _locked(session, order_id)
    if order.review == ReviewState.RELEASED:
        return _answer(order, changed=False)
    _refuse_unless_in_review(order)
    order.review = ReviewState.RELEASED
    _settle(session, order, utcnow())
    return _answer(order, changed=True)


def reject_review(session: Session, order_id: int) -> HoldAnswer:
    """The review rejected the order: cancel it (nothing was issued) and tell the purchaser."""
    order = _locked(session, order_id)
    if order.review == ReviewState.REJECTED:
        return _answer(order, changed=False)
    _refuse_unless_in_review(order)
    order.review = ReviewState.REJECTED
    cancel_held(session, order, CancelReason.REVIEW_REJECTED, "rejected in the fraud review", utcnow())
    return _answer(order, changed=True)


def _refuse_unless_in_review(order: Order) -> None:
    if order.review != ReviewState.PENDING or order.status == OrderStatus.CANCELLED:
        raise OpsRefused(f"order {order.id} is not held for review (it is {order.status})")


# --- beat: the payment deadline -----------------------------------------------------------


def deadline_text(order: Order) -> str:
    """How long the payment was given, as the notice and the order's error say it."""
    if order.payment_due_at is None:
        return ""
    return duration_text(order.payment_due_at - order.created_at)


def duration_text(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def expire_overdue(session: Session, *, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Cancel orders whose payment is past its deadline, telling each purchaser; their ids."""
    now = now or utcnow()
    overdue = list(
        session.scalars(
            select(Order)
            .where(Order.payment == PaymentState.PENDING, Order.status == OrderStatus.AWAITING_PAYMENT)
            .where(Order.payment_due_at <= now)
            .order_by(Order.payment_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    setting = variable("payment_deadline_seconds")
    for order in overdue:
        order.payment = PaymentState.OVERDUE
        error = f"payment not confirmed within {deadline_text(order)} ({setting}); cancelled"
        cancel_held(session, order, CancelReason.PAYMENT_OVERDUE, error, now)
    return [order.id for order in overdue]
