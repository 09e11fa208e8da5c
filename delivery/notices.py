"""What follows a send: the attempts log, suppressed addresses, and the purchaser's notices.

Shared by the dispatcher (answers from a provider), the sweeper (interrupted sends) and
ops. The notices are deliveries of their own (``delivered_notice``, ``failed_notice``),
with the same state machine and retries; a notice about a notice is never sent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from delivery.models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryKind, Order, SuppressedAddress
from delivery.orders.schemas import Channel
from delivery.outbox import enqueue_deliveries
from delivery.reasons import FailureReason
from delivery.states import DeliveryStatus
from giftq.db import is_sqlite, utcnow


def log_attempt(
    session: Session,
    delivery: Delivery,
    outcome: AttemptOutcome,
    *,
    code: int | None,
    response: str,
    started: dt.datetime,
    finished: dt.datetime,
) -> None:
    """One row of the attempts log, numbered by the delivery's ``attempts`` count."""
    session.execute(
        insert(DeliveryAttempt).values(
            delivery_id=delivery.id,
            number=delivery.attempts,
            outcome=outcome,
            code=code,
            response=response,
            started_at=started,
            finished_at=finished,
        )
    )


INTERRUPTED_RESPONSE = (
    "interrupted: the worker stopped during the send; it may have gone out (possible duplicate)"
)


def interrupted(session: Session, delivery_ids: list[int], now: dt.datetime) -> None:
    """Count a send that a dead worker left in flight: an attempt, and a possible duplicate.

    Ops see it in the attempts log and in ``possible_duplicates``; the attempt counts
    toward the retry schedule, so a message that kills its worker every time stops.
    """
    if not delivery_ids:
        return
    rows = list(
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids))
            .values(
                attempts=Delivery.attempts + 1,
                possible_duplicates=Delivery.possible_duplicates + 1,
                last_error=INTERRUPTED_RESPONSE,
                updated_at=now,
            )
            .returning(Delivery.id, Delivery.attempts),
            execution_options={"synchronize_session": False},
        )
    )
    session.execute(
        insert(DeliveryAttempt),
        [
            {
                "delivery_id": delivery_id,
                "number": number,
                "outcome": AttemptOutcome.INTERRUPTED,
                "code": None,
                "response": INTERRUPTED_RESPONSE,
                "started_at": now,
                "finished_at": now,
            }
            for delivery_id, number in rows
        ],
    )


def suppress(
    session: Session, address: str, *, code: int | None, response: str, delivery_id: int | None
) -> None:
    """Stop sending to ``address`` until ops clears it (idempotent; races are fine)."""
    dialect = sqlite if is_sqlite(session) else postgresql
    session.execute(
        dialect.insert(SuppressedAddress)
        .values(
            address=address.lower(),
            code=code,
            response=response,
            delivery_id=delivery_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["address"])
    )


def notify_failure(
    session: Session, gift: Delivery, order: Order, reason: FailureReason, now: dt.datetime
) -> None:
    """Tell the purchaser that a gift failed for good, and why (a key their language renders)."""
    if gift.kind == DeliveryKind.GIFT:
        add(session, [notice_row(gift, order, DeliveryKind.FAILED_NOTICE, reason, now=now)])


def notice_row(
    gift: Delivery,
    order: Order,
    kind: DeliveryKind,
    reason: FailureReason | None = None,
    *,
    now: dt.datetime,
) -> dict[str, object]:
    """A notice to the purchaser about ``gift``, as values for :func:`add`."""
    return {
        "order_id": order.id,
        "line_id": gift.line_id,
        "kind": kind,
        "channel": Channel.EMAIL,
        "status": DeliveryStatus.QUEUED,
        "to_name": order.purchaser_name,
        "to_address": order.purchaser_email,
        "due_at": now,
        "attempts": 0,
        "reason": reason.value if reason is not None else None,
        "parent_id": gift.id,
        "created_at": now,
        "updated_at": now,
    }


def add(session: Session, notices: list[dict[str, object]]) -> None:
    """Insert notices (one statement) and send them after commit."""
    if notices:
        ids = session.scalars(insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), notices)
        enqueue_deliveries(session, list(ids))
