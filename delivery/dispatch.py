"""Send a batch of one channel's deliveries: claim, send, record.

1. :func:`claim` (one short transaction): move the batch's sendable rows to ``sending``
   with one conditional UPDATE (``queued``, a due ``failed_retryable``, or ``sending``
   rows this very task claimed before it was redelivered), refuse suppressed addresses,
   and let the channel compose each message (codes revealed into memory only).
2. :func:`send` (no transaction open): the channel sends the batch and reports each
   answer as it comes.
3. :func:`record`: each answer is written down through :mod:`delivery.lifecycle` in a
   short transaction of its own *before the next message goes out*, so that a worker
   killed mid-batch leaves at most the message in flight to be sent again.

The dispatcher knows channels only through :class:`~delivery.channels.base.Sender`.
A row that is ``sent`` can never be claimed again, so a task that runs twice sends once.
A worker that dies between 1 and 3 leaves rows ``sending``; its redelivered message
takes them back (same task id), or the sweeper does after ``sweep_sending_after``; the
first of them in send order was in flight and is counted as a possible duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import lifecycle, logs
from delivery.channels import registry
from delivery.channels.base import Composed, Outcome, Report, Sender
from delivery.metrics import instruments
from delivery.models import AttemptOutcome, Channel, Delivery, Order, SuppressedAddress
from delivery.outbox import enqueue_deliveries
from delivery.reasons import FailureReason
from delivery.retry import FailureKind, RetrySchedule
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger.codes.redact import redact

log = logging.getLogger(__name__)

RECORD_PATIENCE_SECONDS = 30.0
"""How long a batch waits for the database to write down an answer before it sends the
next message. The recovery of a dead task (its redelivery, or the sweeper) counts only
the first row it still held as possibly sent, which is true only while each answer is
written before the next send: a batch that went on sending during a PostgreSQL restart
and then died would send every unrecorded message again, uncounted. Past this wait it
goes on, and the answers are written at the end of the batch."""

SUPPRESSED_RESPONSE = "not sent: the address refused permanently before (suppressed)"


@dataclass(frozen=True, slots=True)
class BatchReport:
    claimed: int
    sent: int
    retrying: int
    failed: int

    def as_dict(self) -> dict[str, int]:
        return {"claimed": self.claimed, "sent": self.sent, "retrying": self.retrying, "failed": self.failed}

    def __add__(self, other: BatchReport) -> BatchReport:
        return BatchReport(
            self.claimed + other.claimed,
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.failed + other.failed,
        )


NOTHING = BatchReport(0, 0, 0, 0)


# --- 1. claim -----------------------------------------------------------------------------


def claim(
    session: Session,
    sender: Sender,
    delivery_ids: Sequence[int],
    *,
    claimer: str,
    fill_to: int = 0,
    quiet: set[int] | None = None,
) -> list[Composed]:
    """Take the sendable rows of ``delivery_ids`` for this task; compose their messages.

    With ``fill_to``, a short batch is topped up with the oldest other queued deliveries
    of the channel, so that many small orders still make full batches over one
    connection (their own messages then find nothing left to claim: one UPDATE).
    ``quiet``, if given, receives the ids whose acceptance needs no notice (recorded
    with :func:`delivery.lifecycle.accepted_quietly`).
    """
    channel = sender.channel
    now = utcnow()
    # This very task (redelivered after its worker died) first takes back what it held,
    # including rows it had topped its batch up with; then the rows it was sent for.
    # (Two statements rather than one with an OR, so that each can use an index.)
    ids = _take(session, channel, claimer, now, Delivery.status == S.SENDING, Delivery.claimed_by == claimer)
    if ids:
        # Every answer before the crash was recorded as it came, so of the rows still
        # held, the first in send order is the one that was in flight: it may have gone out.
        lifecycle.interrupted(session, [min(ids)], now)
    ids += _take(
        session,
        channel,
        claimer,
        now,
        Delivery.id.in_(list(delivery_ids)),
        or_(
            Delivery.status == S.QUEUED,
            and_(Delivery.status == S.FAILED_RETRYABLE, Delivery.due_at <= now),
        ),
    )
    if len(ids) < fill_to:
        # Selected first, then updated: a LIMIT ... SKIP LOCKED subquery inside the UPDATE
        # may be evaluated more than once by PostgreSQL and take more rows than asked.
        others = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.status == S.QUEUED, Delivery.channel == channel)
                .order_by(Delivery.due_at, Delivery.id)  # (status, due_at) is indexed
                .limit(fill_to - len(ids))
                .with_for_update(skip_locked=True)
            )
        )
        if others:
            ids += _take(session, channel, claimer, now, Delivery.id.in_(others), Delivery.status == S.QUEUED)
    if not ids:
        return []
    rows = session.execute(
        select(Delivery, Order)
        .join(Order, Delivery.order_id == Order.id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
        .execution_options(populate_existing=True)
    ).all()
    suppressed = _suppressed(session, [d.to_address for d, _ in rows if d.to_address])
    sendable: list[tuple[Delivery, Order]] = []
    for delivery, order in rows:
        if (delivery.to_address or "").lower() in suppressed:
            lifecycle.fail_now(
                session,
                delivery,
                order,
                reason=FailureReason.SUPPRESSED,
                response=SUPPRESSED_RESPONSE,
                now=now,
                outcome=AttemptOutcome.SUPPRESSED,
            )
        else:
            sendable.append((delivery, order))
            if quiet is not None and not lifecycle.notice_on_accept(
                delivery, order, reports_delivery=sender.reports_delivery
            ):
                quiet.add(delivery.id)
    by_id = {d.id: (d, o) for d, o in sendable}
    composed: list[Composed] = []
    for item in sender.compose(session, sendable):
        if isinstance(item, Composed):
            composed.append(item)
            continue
        # Bad data, not bad luck: fail this one for ops to see; the batch goes on.
        delivery, order = by_id[item.delivery_id]
        log.error("delivery %d: cannot say what to send: %s", delivery.id, item.response)
        lifecycle.fail_now(
            session,
            delivery,
            order,
            reason=item.reason or FailureReason.UNRENDERABLE,
            response=item.response,
            now=now,
        )
    return composed


def _take(
    session: Session, channel: Channel, claimer: str, now: dt.datetime, *where: ColumnElement[bool]
) -> list[int]:
    """Move the matching deliveries of ``channel`` to ``sending`` for ``claimer``, atomically."""
    return list(
        session.scalars(
            update(Delivery)
            .where(Delivery.channel == channel, *where)
            .values(status=S.SENDING, claimed_by=claimer, updated_at=now)
            .returning(Delivery.id),
            execution_options={"synchronize_session": False},
        )
    )


def _suppressed(session: Session, addresses: list[str]) -> set[str]:
    lowered = sorted({a.lower() for a in addresses})
    if not lowered:
        return set()
    return set(
        session.scalars(select(SuppressedAddress.address).where(SuppressedAddress.address.in_(lowered)))
    )


# --- 2. send ------------------------------------------------------------------------------


def send(sender: Sender, batch: Sequence[Composed], report: Report) -> list[Outcome]:
    """Hand the batch to the channel; every item gets exactly one :class:`Outcome`.

    ``report`` sees each outcome as soon as it is known (before the next message is sent).
    An exception from the channel fails whatever it had not answered yet, as the channel
    classifies it; a channel that forgets an item leaves it retryable.
    """
    outcomes: list[Outcome] = []

    def answered(outcome: Outcome) -> None:
        clean = replace(outcome, response=redact(outcome.response)[:1000])
        outcomes.append(clean)
        report(clean)

    try:
        sender.send(batch, answered)
    except Exception as exc:  # the channel failed as a whole: each unanswered item gets it
        why = describe(exc)
        log.warning("%s batch of %d failed: %s", sender.channel, len(batch), why)
        kind = sender.classify(exc)
        done = {o.delivery_id for o in outcomes}
        for item in batch:
            if item.delivery_id not in done:
                answered(Outcome.failed(item.delivery_id, kind, why))
        return outcomes
    done = {o.delivery_id for o in outcomes}
    for item in batch:
        if item.delivery_id not in done:
            answered(Outcome.failed(item.delivery_id, FailureKind.RETRYABLE, "no answer from the channel"))
    return outcomes


def describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:1000]


# --- 3. record ----------------------------------------------------------------------------


def record(
    session: Session,
    outcomes: Sequence[Outcome],
    *,
    claimer: str,
    started: dt.datetime,
    reports_delivery: bool = False,
    schedule: RetrySchedule | None = None,
) -> BatchReport:
    """Write each answer down and move each delivery on; enqueue what follows after commit."""
    if not outcomes:
        return NOTHING
    schedule = schedule or RetrySchedule.from_settings()
    countdown_max = get_settings().retry_countdown_max_seconds
    now = utcnow()
    rows = {
        d.id: (d, o)
        for d, o in session.execute(
            select(Delivery, Order)
            .join(Order, Delivery.order_id == Order.id)
            .where(Delivery.id.in_([r.delivery_id for r in outcomes]))
            .with_for_update(of=Delivery)
            .execution_options(populate_existing=True)
        ).all()
    }
    sent = retrying = failed = 0
    for outcome in outcomes:
        delivery, order = rows[outcome.delivery_id]
        if not (delivery.status == S.SENDING and delivery.claimed_by == claimer):
            # The sweeper took it back meanwhile: keep the answer for ops, leave the state.
            lifecycle.log_attempt(
                session,
                delivery,
                _attempt_outcome(outcome),
                code=outcome.code,
                response=outcome.response,
                started=started,
                finished=now,
            )
            continue
        if outcome.retry_after is not None and not outcome.accepted:
            _count(delivery.channel, "deferred")
            lifecycle.defer(delivery, now)
            enqueue_deliveries(
                session, delivery.channel, [delivery.id], countdown=min(outcome.retry_after, countdown_max)
            )
            continue
        if outcome.accepted:
            sent += 1
            _count(delivery.channel, "accepted")
            lifecycle.accepted(
                session,
                delivery,
                order,
                code=outcome.code,
                response=outcome.response,
                provider_ref=outcome.provider_ref,
                started=started,
                now=now,
                reports_delivery=reports_delivery,
            )
            continue
        next_at = lifecycle.failed(
            session,
            delivery,
            order,
            kind=outcome.kind or FailureKind.RETRYABLE,
            code=outcome.code,
            response=outcome.response,
            reason=outcome.reason,
            suppress=outcome.suppress,
            started=started,
            now=now,
            schedule=schedule,
        )
        if next_at is None:
            failed += 1
            _count(delivery.channel, "failed")
            continue
        retrying += 1
        _count(delivery.channel, "retrying")
        instruments.RETRIES.labels(channel=delivery.channel.value).inc()
        wait = (next_at - now).total_seconds()
        if wait <= countdown_max:
            enqueue_deliveries(session, delivery.channel, [delivery.id], countdown=wait)
    session.flush()
    return BatchReport(len(outcomes), sent, retrying, failed)


def _count(channel: Channel, outcome: str) -> None:
    instruments.SENDS.labels(channel=channel.value, outcome=outcome).inc()


def _attempt_outcome(outcome: Outcome) -> AttemptOutcome:
    if outcome.accepted:
        return AttemptOutcome.ACCEPTED
    return AttemptOutcome.RETRYABLE if outcome.kind is FailureKind.RETRYABLE else AttemptOutcome.PERMANENT


# --- the three steps, for an entry point --------------------------------------------------


def run_batch(
    sessions: sessionmaker[Session],
    channel: Channel | str,
    delivery_ids: Sequence[int],
    *,
    claimer: str | None = None,
    sender: Sender | None = None,
    fill_to: int = 0,
) -> BatchReport:
    """Claim, send and record one batch; each database step in its own short transaction."""
    sender = sender or registry.get(channel)
    claimer = claimer or uuid.uuid4().hex
    quiet: set[int] = set()
    with sessions.begin() as session:
        composed = claim(session, sender, delivery_ids, claimer=claimer, fill_to=fill_to, quiet=quiet)
    started = utcnow()
    recorded: set[int] = set()
    totals = [NOTHING]
    latency = instruments.SEND_SECONDS.labels(channel=sender.channel.value)
    previous = [time.perf_counter()]

    def record_now(outcome: Outcome) -> None:
        answered_at = time.perf_counter()
        latency.observe(answered_at - previous[0])
        previous[0] = answered_at
        give_up_at, pause = time.monotonic() + RECORD_PATIENCE_SECONDS, 0.1
        while True:
            try:
                if outcome.accepted and outcome.delivery_id in quiet and _record_quietly(sessions, outcome):
                    totals[0] += BatchReport(1, 1, 0, 0)
                    recorded.add(outcome.delivery_id)
                    return
                with sessions.begin() as session, logs.bound(delivery_id=outcome.delivery_id):
                    totals[0] += record(
                        session,
                        [outcome],
                        claimer=claimer,
                        started=started,
                        reports_delivery=sender.reports_delivery,
                    )
                break
            except Exception as exc:  # the database is away: wait for it, then go on without
                if time.monotonic() + pause > give_up_at:
                    log.warning(
                        "delivery %d: answer not recorded yet: %s", outcome.delivery_id, describe(exc)
                    )
                    return
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
        recorded.add(outcome.delivery_id)

    def _record_quietly(sessions: sessionmaker[Session], outcome: Outcome) -> bool:
        """The common answer (accepted, no notice follows) without the locked read."""
        with sessions.begin() as session:
            done = lifecycle.accepted_quietly(
                session,
                outcome.delivery_id,
                claimer=claimer,
                code=outcome.code,
                response=outcome.response,
                provider_ref=outcome.provider_ref,
                started=started,
                now=utcnow(),
            )
        if done:
            _count(sender.channel, "accepted")
        return done

    with logs.bound(delivery_ids=[c.delivery_id for c in composed]):
        outcomes = send(sender, composed, record_now)
    rest = [o for o in outcomes if o.delivery_id not in recorded]
    if rest:
        with sessions.begin() as session:
            totals[0] += record(
                session, rest, claimer=claimer, started=started, reports_delivery=sender.reports_delivery
            )
    return totals[0]
