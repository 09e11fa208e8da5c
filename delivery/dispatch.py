"""Send a batch of email deliveries: claim, send, record.

1. :func:`claim` (one short transaction): move the batch's sendable rows to ``sending``
   with one conditional UPDATE (``queued``, a due ``failed_retryable``, or ``sending``
   rows this very task claimed before it was redelivered), refuse suppressed addresses,
   and load what the emails say, codes revealed from the ledger into memory only.
2. :func:`send` (no transaction open): render, build, and hand the batch to the
   transport over its kept-open SMTP connection.
3. :func:`record` (one short transaction): an attempt row per answer, the state change,
   retry timing from :mod:`delivery.retry`, suppression of addresses that answered a
   permanent 5xx, and the purchaser's notices.

A row that is ``sent`` can never be claimed again, so a task that runs twice sends once.
A worker that dies between 1 and 3 leaves rows ``sending``; its redelivered message
takes them back (same task id), or the sweeper does after ``sweep_sending_after``.
Such a message may go out twice: at least once, never zero times.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import lru_cache
from typing import Protocol

from sqlalchemy import ColumnElement, and_, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import notices
from delivery.channels.email import (
    EmailContext,
    Envelope,
    SendOutcome,
    build_message,
    compose,
    get_transport,
    render_email,
)
from delivery.models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    Order,
    SuppressedAddress,
)
from delivery.orders.schemas import Channel
from delivery.outbox import enqueue_after_commit
from delivery.reasons import FailureReason
from delivery.retry import FailureKind, RetrySchedule, classify
from delivery.states import DeliveryStatus as S
from delivery.states import check
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger.codes.redact import redact
from ledger.errors import LedgerError

log = logging.getLogger(__name__)


class Transport(Protocol):
    """What :func:`send` needs from a channel back end (``delivery.channels.email`` provides one)."""

    def send_batch(
        self, envelopes: list[Envelope], on_outcome: Callable[[SendOutcome], None] | None = None
    ) -> list[SendOutcome]: ...


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: int
    to_name: str
    to_address: str
    context: EmailContext = field(repr=False)
    """May hold a claim code (a gift): kept out of repr."""


@dataclass(frozen=True, slots=True)
class Result:
    delivery_id: int
    accepted: bool
    kind: FailureKind | None
    code: int | None
    response: str
    started_at: dt.datetime


@dataclass(frozen=True, slots=True)
class BatchReport:
    claimed: int
    sent: int
    retrying: int
    failed: int

    def as_dict(self) -> dict[str, int]:
        return {"claimed": self.claimed, "sent": self.sent, "retrying": self.retrying, "failed": self.failed}


# --- 1. claim -----------------------------------------------------------------------------


def claim(session: Session, delivery_ids: Sequence[int], *, claimer: str, fill_to: int = 0) -> list[Claimed]:
    """Take the sendable rows of ``delivery_ids`` for this task; load what their emails say.

    With ``fill_to``, a short batch is topped up with the oldest other queued emails, so
    that many small orders still make full batches over one connection (their own
    messages then find nothing left to claim, which costs one UPDATE).
    """
    now = utcnow()
    # This very task (redelivered after its worker died) first takes back what it held,
    # including rows it had topped its batch up with; then the rows it was sent for.
    # (Two statements rather than one with an OR, so that each can use an index.)
    ids = _take(session, claimer, now, Delivery.status == S.SENDING, Delivery.claimed_by == claimer)
    if ids:
        # Every answer before the crash was recorded as it came, so of the rows still
        # held, the first in send order is the one that was in flight: it may have gone out.
        notices.interrupted(session, [min(ids)], now)
    ids += _take(
        session,
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
                .where(Delivery.status == S.QUEUED, Delivery.channel == Channel.EMAIL)
                .order_by(Delivery.due_at, Delivery.id)  # (status, due_at) is indexed
                .limit(fill_to - len(ids))
                .with_for_update(skip_locked=True)
            )
        )
        if others:
            ids += _take(session, claimer, now, Delivery.id.in_(others), Delivery.status == S.QUEUED)
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
    loaded = compose.load(session, [d for d, _ in rows])
    claimed: list[Claimed] = []
    for delivery, order in rows:
        address = delivery.to_address or ""
        if address.lower() in suppressed:
            _refuse_suppressed(session, delivery, order, now)
            continue
        try:
            context = compose.context(delivery, order, loaded)
        except (LedgerError, LookupError, TypeError, ValueError) as exc:
            # Bad data, not bad luck: fail this one for ops to see; the batch goes on.
            log.error("delivery %d: cannot say what to send: %s", delivery.id, _describe(exc))
            _fail_now(session, delivery, order, _describe(exc), now)
            continue
        claimed.append(Claimed(delivery.id, delivery.to_name, address, context))
    return claimed


def _take(session: Session, claimer: str, now: dt.datetime, *where: ColumnElement[bool]) -> list[int]:
    """Move the matching email deliveries to ``sending`` for ``claimer``, atomically."""
    return list(
        session.scalars(
            update(Delivery)
            .where(Delivery.channel == Channel.EMAIL, *where)
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


def _refuse_suppressed(session: Session, delivery: Delivery, order: Order, now: dt.datetime) -> None:
    response = "not sent: the address refused mail permanently before (suppressed)"
    delivery.attempts += 1
    notices.log_attempt(
        session, delivery, AttemptOutcome.SUPPRESSED, code=None, response=response, started=now, finished=now
    )
    delivery.status = check(delivery.status, S.FAILED_PERMANENT)
    delivery.last_error = response
    delivery.updated_at = now
    notices.notify_failure(session, delivery, order, FailureReason.SUPPRESSED, now)


def _fail_now(session: Session, delivery: Delivery, order: Order, error: str, now: dt.datetime) -> None:
    delivery.attempts += 1
    notices.log_attempt(
        session, delivery, AttemptOutcome.PERMANENT, code=None, response=error, started=now, finished=now
    )
    delivery.status = check(delivery.status, S.FAILED_PERMANENT)
    delivery.last_error = error
    delivery.updated_at = now
    notices.notify_failure(session, delivery, order, FailureReason.UNRENDERABLE, now)


# --- 2. send ------------------------------------------------------------------------------


def sender_address() -> str:
    return _address_of(get_settings().email_from)


@lru_cache(maxsize=8)
def _address_of(email_from: str) -> str:
    return parseaddr(email_from)[1]


def message_id(delivery_id: int) -> str:
    """Stable per delivery, so that a repeated send reads as the same message."""
    return f"giftq.delivery.{delivery_id}@{sender_address().rpartition('@')[2] or 'localhost'}"


def send(
    claimed: Sequence[Claimed],
    transport: Transport | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Render and send; every claimed delivery gets exactly one :class:`Result`.

    ``on_result`` sees each result as soon as it is known (before the next message is
    sent), so that :func:`run_batch` can record it at once.
    """
    started = utcnow()
    report = on_result or _ignore
    results: list[Result] = []

    def add(result: Result) -> None:
        results.append(result)
        report(result)

    envelopes: list[Envelope] = []
    mail_from = sender_address()
    for item in claimed:
        try:
            rendered = render_email(item.context)
            data = build_message(
                rendered,
                to_name=item.to_name,
                to_addr=item.to_address,
                message_id=message_id(item.delivery_id),
            )
        except Exception as exc:  # a bad row must not sink its batch
            log.exception("delivery %d: could not build the email", item.delivery_id)
            add(
                Result(item.delivery_id, False, classify(error=exc), None, _describe(exc), started)
            )
            continue
        envelopes.append(
            Envelope(mail_from=mail_from, rcpt_to=item.to_address, data=data, ref=item.delivery_id)
        )
    if not envelopes:
        return results

    def answered(outcome: SendOutcome) -> None:
        kind: FailureKind | None = None
        if not outcome.accepted:
            kind = (
                FailureKind(outcome.failure.kind)
                if outcome.failure is not None
                else classify(smtp_code=outcome.code)
            )
        said = outcome.response or (outcome.failure.detail if outcome.failure else "")
        response = redact(said)[:1000]
        add(Result(outcome.ref, outcome.accepted, kind, outcome.code, response, started))

    try:
        (transport or get_transport()).send_batch(envelopes, answered)
    except Exception as exc:  # the whole batch failed to go out: each delivery gets the answer
        log.warning("email batch of %d failed: %s", len(envelopes), _describe(exc))
        batch_kind = classify(error=exc)
        done = {r.delivery_id for r in results}
        for e in envelopes:
            if e.ref not in done:
                add(Result(e.ref, False, batch_kind, None, _describe(exc), started))
        return results
    done = {r.delivery_id for r in results}
    for envelope in envelopes:
        if envelope.ref not in done:
            add(
                Result(envelope.ref, False, FailureKind.RETRYABLE, None, "no answer from transport", started)
            )
    return results


def _ignore(_: Result) -> None:
    return None


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:1000]


# --- 3. record ----------------------------------------------------------------------------


def record(
    session: Session,
    results: Sequence[Result],
    *,
    claimer: str,
    schedule: RetrySchedule | None = None,
) -> BatchReport:
    """Write each answer down and move each delivery on; enqueue what follows after commit."""
    if not results:
        return BatchReport(0, 0, 0, 0)
    schedule = schedule or RetrySchedule.from_settings()
    settings = get_settings()
    now = utcnow()
    rows = {
        d.id: (d, o)
        for d, o in session.execute(
            select(Delivery, Order)
            .join(Order, Delivery.order_id == Order.id)
            .where(Delivery.id.in_([r.delivery_id for r in results]))
            .with_for_update(of=Delivery)
            .execution_options(populate_existing=True)
        ).all()
    }
    sent = retrying = failed = 0
    attempts: list[dict[str, object]] = []
    follow_ups: list[dict[str, object]] = []
    with session.no_autoflush:
        for result in results:
            delivery, order = rows[result.delivery_id]
            mine = delivery.status == S.SENDING and delivery.claimed_by == claimer
            if mine:
                delivery.attempts += 1
                delivery.updated_at = now
            # Not mine: the sweeper took it back meanwhile; log the answer, leave the state.
            attempts.append(_attempt_row(delivery, result, now))
            if not mine:
                continue
            if result.accepted:
                sent += 1
                delivery.status = check(delivery.status, S.SENT)
                delivery.sent_at = now
                delivery.last_error = None
                if (
                    delivery.kind == DeliveryKind.GIFT
                    and order.line_count <= settings.delivered_notice_max_lines
                ):
                    follow_ups.append(
                        notices.notice_row(delivery, order, DeliveryKind.DELIVERED_NOTICE, now=now)
                    )
                continue
            delivery.last_error = result.response
            next_at = (
                schedule.next_attempt_at(delivery.attempts, now)
                if result.kind is FailureKind.RETRYABLE
                else None
            )
            if next_at is not None:
                retrying += 1
                delivery.status = check(delivery.status, S.FAILED_RETRYABLE)
                delivery.due_at = next_at
                wait = (next_at - now).total_seconds()
                if wait <= settings.retry_countdown_max_seconds:
                    enqueue_after_commit(
                        session, "giftq.dispatch_email", {"delivery_ids": [delivery.id]}, countdown=wait
                    )
                continue
            failed += 1
            delivery.status = check(delivery.status, S.FAILED_PERMANENT)
            if result.kind is FailureKind.PERMANENT and result.code is not None and 500 <= result.code < 600:
                notices.suppress(
                    session,
                    delivery.to_address or "",
                    code=result.code,
                    response=result.response,
                    delivery_id=delivery.id,
                )
            if delivery.kind == DeliveryKind.GIFT:
                reason = _reason(result)
                follow_ups.append(
                    notices.notice_row(delivery, order, DeliveryKind.FAILED_NOTICE, reason, now=now)
                )
    # One statement each for the whole batch, not one per delivery.
    session.flush()
    session.execute(insert(DeliveryAttempt), attempts)
    notices.add(session, follow_ups)
    return BatchReport(len(results), sent, retrying, failed)


def _attempt_row(delivery: Delivery, result: Result, now: dt.datetime) -> dict[str, object]:
    return {
        "delivery_id": delivery.id,
        "number": delivery.attempts,
        "outcome": _outcome(result),
        "code": result.code,
        "response": result.response,
        "started_at": result.started_at,
        "finished_at": now,
    }


def _outcome(result: Result) -> AttemptOutcome:
    if result.accepted:
        return AttemptOutcome.ACCEPTED
    return AttemptOutcome.RETRYABLE if result.kind is FailureKind.RETRYABLE else AttemptOutcome.PERMANENT


def _reason(result: Result) -> FailureReason:
    if result.kind is FailureKind.RETRYABLE:
        return FailureReason.UNREACHABLE
    if result.code is not None:
        return FailureReason.REFUSED
    return FailureReason.UNRENDERABLE


# --- the three steps, for an entry point --------------------------------------------------


def run_batch(
    sessions: sessionmaker[Session],
    delivery_ids: Sequence[int],
    *,
    claimer: str | None = None,
    transport: Transport | None = None,
    fill_to: int = 0,
) -> BatchReport:
    """Claim, send and record one batch; each database step in its own short transaction."""
    claimer = claimer or uuid.uuid4().hex
    with sessions.begin() as session:
        claimed = claim(session, delivery_ids, claimer=claimer, fill_to=fill_to)
    recorded: set[int] = set()
    reports: list[BatchReport] = []

    def record_now(result: Result) -> None:
        # Each answer is written down before the next message goes out: a worker killed
        # mid-batch leaves at most the message in flight to be sent again.
        try:
            with sessions.begin() as session:
                reports.append(record(session, [result], claimer=claimer))
        except Exception as exc:  # the database is away: the end of the batch tries again
            log.warning("delivery %d: answer not recorded yet: %s", result.delivery_id, _describe(exc))
            return
        recorded.add(result.delivery_id)

    results = send(claimed, transport, record_now)
    rest = [r for r in results if r.delivery_id not in recorded]
    if rest:
        with sessions.begin() as session:
            reports.append(record(session, rest, claimer=claimer))
    return BatchReport(
        len(results),
        sum(r.sent for r in reports),
        sum(r.retrying for r in reports),
        sum(r.failed for r in reports),
    )
