"""Every change of a delivery's status, together with what goes with it.

One place owns the steps that always travel together: the status change (checked
against :mod:`delivery.states`), the attempt row with the provider's answer, the
purchaser's notice and the suppression of an address that refused for good. The
dispatcher, the sweeper, provider reports (SMS callbacks, fulfilment) and ops call these
functions and never set a status themselves.

- :func:`delivery.models.new_delivery_row` is the one builder of a delivery row.
- :func:`accepted`, :func:`failed`: the answer to a send; :func:`accepted_quietly`, the
  same for a send whose acceptance needs no notice, in two statements.
- :func:`fail_now`: a send refused before it was tried (suppressed, cannot be composed).
- :func:`defer`: a send put back untried (the channel's send rate ran out).
- :func:`interrupted`: a dead worker left a send in flight (a possible duplicate).
- :func:`reported`: the provider's later report (delivered, undelivered, failed).
- :func:`requeue`, :func:`cancel`: ops and the sweeper.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from delivery import notice_policy, notices
from delivery.models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryKind, Order
from delivery.reasons import FailureReason
from delivery.retry import FailureKind, RetrySchedule
from delivery.states import DeliveryStatus as S
from delivery.states import check

INTERRUPTED_RESPONSE = (
    "interrupted: the worker stopped during the send; it may have gone out (possible duplicate)"
)


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


def _move(delivery: Delivery, target: S, now: dt.datetime) -> None:
    delivery.status = check(delivery.status, target)
    delivery.updated_at = now


# --- the answer to a send -----------------------------------------------------------------


def accepted(
    session: Session,
    delivery: Delivery,
    order: Order,
    *,
    code: int | None,
    response: str,
    provider_ref: str | None,
    started: dt.datetime,
    now: dt.datetime,
    reports_delivery: bool,
) -> None:
    """The provider took the message: ``sent``; tell the purchaser unless a report will."""
    delivery.attempts += 1
    log_attempt(
        session,
        delivery,
        AttemptOutcome.ACCEPTED,
        code=code,
        response=response,
        started=started,
        finished=now,
    )
    _move(delivery, S.SENT, now)
    delivery.sent_at = now
    delivery.last_error = None
    if provider_ref is not None:
        delivery.provider_ref = provider_ref
    if not reports_delivery:
        _delivered_notice(session, delivery, order, now, reported=False)


def accepted_quietly(
    session: Session,
    delivery_id: int,
    *,
    claimer: str,
    code: int | None,
    response: str,
    provider_ref: str | None,
    started: dt.datetime,
    now: dt.datetime,
) -> bool:
    """:func:`accepted` for a send whose acceptance needs no notice (see
    :func:`notice_on_accept`), as two statements instead of a locked read and the ORM.

    Returns False, changing nothing, unless this ``claimer`` still holds the delivery
    ``sending``; the caller then records the answer the long way (:func:`log_attempt`).
    """
    check(S.SENDING, S.SENT)
    values: dict[str, object] = {
        "status": S.SENT,
        "attempts": Delivery.attempts + 1,
        "sent_at": now,
        "updated_at": now,
        "last_error": None,
    }
    if provider_ref is not None:
        values["provider_ref"] = provider_ref
    number = session.scalar(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == S.SENDING, Delivery.claimed_by == claimer)
        .values(values)
        .returning(Delivery.attempts),
        execution_options={"synchronize_session": False},
    )
    if number is None:
        return False
    session.execute(
        insert(DeliveryAttempt).values(
            delivery_id=delivery_id,
            number=number,
            outcome=AttemptOutcome.ACCEPTED,
            code=code,
            response=response,
            started_at=started,
            finished_at=now,
        )
    )
    return True


def notice_on_accept(delivery: Delivery, order: Order, *, reports_delivery: bool) -> bool:
    """Whether :func:`accepted` of this claimed delivery would add a purchaser's notice."""
    return not reports_delivery and _wants_delivered_notice(
        delivery, order, reported=False, attempts=delivery.attempts + 1
    )


def failed(
    session: Session,
    delivery: Delivery,
    order: Order,
    *,
    kind: FailureKind,
    code: int | None,
    response: str,
    reason: FailureReason | None,
    suppress: bool,
    started: dt.datetime,
    now: dt.datetime,
    schedule: RetrySchedule,
    new_attempt: bool = True,
) -> dt.datetime | None:
    """A refused or failed send: retry it on the schedule, or fail it for good.

    Returns when the retry is due (None when it failed for good). A provider's later
    report of a failure (``new_attempt=False``) is the end of an attempt already counted.
    """
    if new_attempt:
        delivery.attempts += 1
    outcome = AttemptOutcome.RETRYABLE if kind is FailureKind.RETRYABLE else AttemptOutcome.PERMANENT
    log_attempt(session, delivery, outcome, code=code, response=response, started=started, finished=now)
    delivery.last_error = response
    next_at = schedule.next_attempt_at(delivery.attempts, now) if kind is FailureKind.RETRYABLE else None
    if next_at is not None:
        _move(delivery, S.FAILED_RETRYABLE, now)
        delivery.due_at = next_at
        return next_at
    _move(delivery, S.FAILED_PERMANENT, now)
    if suppress:
        notices.suppress(
            session, delivery.to_address or "", code=code, response=response, delivery_id=delivery.id
        )
    if reason is None:
        reason = FailureReason.UNREACHABLE if kind is FailureKind.RETRYABLE else FailureReason.REFUSED
    _failed_notice(session, delivery, order, reason, now)
    return None


def defer(delivery: Delivery, now: dt.datetime) -> None:
    """Not attempted after all (the send rate ran out, the provider said slow down): back
    in the queue, with no attempt counted."""
    _move(delivery, S.QUEUED, now)
    delivery.claimed_by = None


def fail_now(
    session: Session,
    delivery: Delivery,
    order: Order,
    *,
    reason: FailureReason,
    response: str,
    now: dt.datetime,
    outcome: AttemptOutcome = AttemptOutcome.PERMANENT,
) -> None:
    """Fail a claimed delivery without trying it (suppressed address, nothing to compose)."""
    delivery.attempts += 1
    log_attempt(session, delivery, outcome, code=None, response=response, started=now, finished=now)
    _move(delivery, S.FAILED_PERMANENT, now)
    delivery.last_error = response
    _failed_notice(session, delivery, order, reason, now)


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


def abandon(session: Session, delivery: Delivery, order: Order, now: dt.datetime) -> None:
    """A send interrupted more often than the schedule allows: failed for good."""
    _move(delivery, S.FAILED_PERMANENT, now)
    delivery.claimed_by = None
    _failed_notice(session, delivery, order, FailureReason.INTERRUPTED, now)


# --- later reports from the provider ------------------------------------------------------


def reported(
    session: Session,
    delivery: Delivery,
    order: Order,
    *,
    delivered: bool,
    kind: FailureKind | None = None,
    code: int | None = None,
    response: str = "",
    reason: FailureReason | None = None,
    suppress: bool = False,
    notify: bool = True,
    now: dt.datetime,
    schedule: RetrySchedule | None = None,
) -> bool:
    """The provider reports what became of a sent message; returns False if it changes nothing.

    Reports only move a delivery forward from ``sent``: a late or repeated report (the
    delivery is already ``delivered``, failed, or queued again) changes nothing.

    A report that it did not arrive, with a ``kind`` (a text the carrier could not
    deliver), is a failure of the attempt already counted: retried on the schedule, or
    final, as the kind says. Without a ``kind`` (a physical card lost in the post) it is
    final: ``bounced``, which ops may replay, with an attempt row holding the provider's
    answer and, unless ``notify`` is False (a replacement is on its way), the purchaser's
    failure notice.
    """
    if delivery.status != S.SENT:
        return False
    if delivered:
        _move(delivery, S.DELIVERED, now)
        _delivered_notice(session, delivery, order, now, reported=True)
        return True
    if kind is not None:
        failed(
            session,
            delivery,
            order,
            kind=kind,
            code=code,
            response=response,
            reason=reason,
            suppress=suppress,
            started=now,
            now=now,
            schedule=schedule or RetrySchedule.from_settings(),
            new_attempt=False,
        )
        return True
    log_attempt(
        session, delivery, AttemptOutcome.PERMANENT, code=code, response=response, started=now, finished=now
    )
    _move(delivery, S.BOUNCED, now)
    delivery.last_error = response
    if suppress and delivery.to_address:
        notices.suppress(session, delivery.to_address, code=code, response=response, delivery_id=delivery.id)
    if notify:
        _failed_notice(session, delivery, order, reason or FailureReason.REFUSED, now)
    return True


# --- ops and the sweeper ------------------------------------------------------------------


def requeue(delivery: Delivery, now: dt.datetime) -> None:
    """Queue it (again) now: a replay, or a send the sweeper took back from a dead worker."""
    _move(delivery, S.QUEUED, now)
    delivery.due_at = min(delivery.due_at, now)
    delivery.claimed_by = None


def cancel(delivery: Delivery, now: dt.datetime) -> None:
    _move(delivery, S.CANCELLED, now)


# --- the purchaser's notices --------------------------------------------------------------


def _delivered_notice(
    session: Session, gift: Delivery, order: Order, now: dt.datetime, *, reported: bool
) -> None:
    if _wants_delivered_notice(gift, order, reported=reported, attempts=gift.attempts):
        notices.add(session, [notices.notice_row(gift, order, DeliveryKind.DELIVERED_NOTICE, now=now)])


def _wants_delivered_notice(gift: Delivery, order: Order, *, reported: bool, attempts: int) -> bool:
    return gift.kind == DeliveryKind.GIFT and notice_policy.wants_sent_notice(
        line_count=order.line_count,
        # The gift itself went to the purchaser (a card to print, a gift to themself):
        # that email is the news; a second one saying it was sent would only repeat it.
        to_purchaser=(gift.to_address or "").lower() == order.purchaser_email.lower(),
        reported=reported,
        attempts=attempts,
        due_at=gift.due_at,
        created_at=gift.created_at,
    )


def _failed_notice(
    session: Session, gift: Delivery, order: Order, reason: FailureReason, now: dt.datetime
) -> None:
    if gift.kind == DeliveryKind.GIFT:
        notices.add(session, [notices.notice_row(gift, order, DeliveryKind.FAILED_NOTICE, reason, now=now)])
