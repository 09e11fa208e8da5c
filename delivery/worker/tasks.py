"""Celery tasks: thin. Each parses its ids, opens sessions and calls a plain function.

Messages carry ids and the order payload only, never a claim code. A message that is
malformed is refused with one clear error line naming what is wrong, and is not retried
(``throws``: acknowledged as failed, no traceback storm); only database outages are
retried, with backoff, on top of the broker's redelivery and the sweeper. A bound task's
``self`` is positional-only (``/``): a message with a kwarg named ``self`` is then an
unexpected argument like any other, not a ``TypeError`` from the call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from celery import Task, shared_task
from sqlalchemy.exc import OperationalError

from delivery import dispatch, due, sweeper
from delivery.channels.physical import batches as physical_batches
from delivery.channels.physical import reports as physical_reports
from delivery.errors import FieldError, HoldRefused, IdempotencyConflict, InvalidOrder, NotFound
from delivery.expiry import jobs as expiry_jobs
from delivery.models import Channel, OrderStatus
from delivery.orders import holds, intake, processing, schemas
from delivery.outbox import Message, publish
from delivery.programs import tasks as program_tasks
from giftq.db import session_factory, utcnow
from giftq.settings import get_settings
from ledger.errors import LedgerError

log = logging.getLogger(__name__)

_DB_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


_Task = TypeVar("_Task", bound=Callable[..., Any])

EXPIRY_BATCH = 500
"""Cards expired (or reminded) per database transaction by ``giftq.expire_cards``."""


def giftq_task(name: str, **options: Any) -> Callable[[_Task], _Task]:
    """``shared_task`` with a stable name, typed for mypy (Celery ships no types)."""
    return cast(Callable[[_Task], _Task], shared_task(name=name, **options))


class InvalidMessage(InvalidOrder):
    """A task message whose arguments are not what the task takes."""


def _id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidMessage([FieldError(name, "must be a positive integer id")])
    return value


def _ids(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise InvalidMessage([FieldError(name, "must be a non-empty list of ids")])
    return [_id(v, f"{name}.{i}") for i, v in enumerate(value)]


def _unexpected(args: tuple[Any, ...], extra: dict[str, Any]) -> list[FieldError]:
    errors = [FieldError(name, "unexpected argument") for name in sorted(extra)]
    if args:
        errors.insert(0, FieldError("args", "positional arguments are not accepted; send kwargs"))
    return errors


def _no_extras(args: tuple[Any, ...], extra: dict[str, Any]) -> None:
    if errors := _unexpected(args, extra):
        raise InvalidMessage(errors)


@giftq_task("giftq.place_order", bind=True, throws=(InvalidOrder, IdempotencyConflict), **_DB_RETRY)
def place_order(
    self: Task, /, *args: Any, order: Any = None, idempotency_key: Any = None, **extra: Any
) -> dict[str, Any]:
    """Intake by name, for storefronts in any language: kwargs ``order``, ``idempotency_key``."""
    try:
        errors = _unexpected(args, extra)
        try:
            parsed, key = schemas.parse_request(order, idempotency_key)
        except InvalidOrder as exc:
            errors += exc.errors
        if errors:
            raise InvalidMessage(errors)
        return intake.place_order(parsed, idempotency_key=key).as_dict()
    except (InvalidOrder, IdempotencyConflict) as exc:
        log.error("giftq.place_order %s refused, nothing written: %s", self.request.id, exc)
        raise


@giftq_task("giftq.process_order", bind=True, throws=(InvalidOrder, NotFound), **_DB_RETRY)
def process_order(self: Task, /, *args: Any, order_id: Any = None, **extra: Any) -> dict[str, Any]:
    """Issue the cards of every ready order, this one among them, chunk by chunk.

    Each chunk takes the oldest ready orders together (one ledger transaction, one insert
    of their deliveries), so that the messages of the other orders it took find nothing
    left; near the time limit the rest goes to a fresh task.
    """
    _no_extras(args, extra)
    order_id = _id(order_id, "order_id")
    budget = get_settings().task_soft_time_limit_seconds / 2
    deadline = time.monotonic() + budget
    sessions = session_factory()
    orders = issued = 0
    while time.monotonic() < deadline:
        try:
            with sessions.begin() as session:
                progress = processing.issue_ready_orders(session)
        except LedgerError as exc:
            log.warning("a batch of orders was refused by the ledger (%s); taking them one by one", exc)
            finished, cards = _one_by_one(sessions)
            orders += finished
            issued += cards
            continue
        orders += progress.finished
        issued += progress.issued
        if not progress.more:
            # Every order ready at the claim was taken (or is held by another worker);
            # orders placed since have messages of their own.
            return {"order_id": order_id, "orders": orders, "issued": issued}
    publish([Message("giftq.process_order", {"order_id": order_id})])
    return {"order_id": order_id, "orders": orders, "issued": issued}


def _one_by_one(sessions: Any) -> tuple[int, int]:
    """Issue the next chunk of each ready order on its own; an order the ledger refuses fails.

    Returns (orders finished, cards issued)."""
    with sessions.begin() as session:
        order_ids = processing.ready_order_ids(session, limit=get_settings().issue_chunk_size)
    finished = issued = 0
    for order_id in order_ids:
        try:
            with sessions.begin() as session:
                progress = processing.issue_next_chunk(session, order_id)
            issued += progress.issued
            finished += int(progress.issued > 0 and progress.status == OrderStatus.ISSUED)
        except LedgerError as exc:
            with sessions.begin() as session:
                processing.mark_failed(session, order_id, str(exc))
            log.error("order %d: issuance refused, order failed: %s", order_id, exc)
    return finished, issued


@giftq_task("giftq.confirm_payment", bind=True, throws=(InvalidOrder, NotFound, HoldRefused), **_DB_RETRY)
def confirm_payment(self: Task, *args: Any, order_id: Any = None, **extra: Any) -> dict[str, Any]:
    """The storefront's word that a held order's payment cleared: kwargs ``order_id``."""
    return _hold_answer(self, holds.confirm_payment, args, order_id, extra)


@giftq_task("giftq.decline_payment", bind=True, throws=(InvalidOrder, NotFound, HoldRefused), **_DB_RETRY)
def decline_payment(self: Task, *args: Any, order_id: Any = None, **extra: Any) -> dict[str, Any]:
    """The storefront's word that a held order's payment failed: kwargs ``order_id``."""
    return _hold_answer(self, holds.decline_payment, args, order_id, extra)


def _hold_answer(
    task: Task,
    answer: Callable[[int], holds.HoldAnswer],
    args: tuple[Any, ...],
    order_id: Any,
    extra: dict[str, Any],
) -> dict[str, Any]:
    try:
        _no_extras(args, extra)
        return answer(_id(order_id, "order_id")).as_dict()
    except (InvalidOrder, NotFound, HoldRefused) as exc:
        log.error("%s %s refused, nothing changed: %s", task.name, task.request.id, exc)
        raise


@giftq_task("giftq.expire_holds", **_DB_RETRY)
def expire_holds() -> dict[str, int]:
    """Cancel held orders whose payment is past its deadline, telling each purchaser (beat)."""
    with session_factory().begin() as session:
        return {"cancelled": len(holds.expire_overdue(session))}


def _dispatch(
    task: Task, channel: Channel, args: tuple[Any, ...], delivery_ids: Any, extra: dict[str, Any]
) -> dict[str, int]:
    _no_extras(args, extra)
    ids = _ids(delivery_ids, "delivery_ids")
    fill_to = get_settings().dispatch_batch_size
    report = dispatch.run_batch(
        session_factory(), channel, ids, claimer=str(task.request.id), fill_to=fill_to
    )
    return report.as_dict()


@giftq_task("giftq.dispatch_email", bind=True, throws=(InvalidOrder,), **_DB_RETRY)
def dispatch_email(self: Task, /, *args: Any, delivery_ids: Any = None, **extra: Any) -> dict[str, int]:
    """Send a batch of email deliveries (claimed under this task's id)."""
    return _dispatch(self, Channel.EMAIL, args, delivery_ids, extra)


@giftq_task("giftq.dispatch_sms", bind=True, throws=(InvalidOrder,), **_DB_RETRY)
def dispatch_sms(self: Task, /, *args: Any, delivery_ids: Any = None, **extra: Any) -> dict[str, int]:
    """Send a batch of text-message deliveries (claimed under this task's id)."""
    return _dispatch(self, Channel.SMS, args, delivery_ids, extra)


@giftq_task("giftq.dispatch_printable", bind=True, throws=(InvalidOrder,), **_DB_RETRY)
def dispatch_printable(self: Task, /, *args: Any, delivery_ids: Any = None, **extra: Any) -> dict[str, int]:
    """Render and send a batch of print-at-home cards (claimed under this task's id)."""
    return _dispatch(self, Channel.PRINTABLE, args, delivery_ids, extra)


@giftq_task("giftq.dispatch_physical", bind=True, throws=(InvalidOrder,), **_DB_RETRY)
def dispatch_physical(self: Task, /, *args: Any, delivery_ids: Any = None, **extra: Any) -> dict[str, int]:
    """Hand due physical cards to the vendor: released at a cut-off, retries, replays.

    The batch takes every queued physical card, so the other messages of a cut-off find
    nothing left to claim.
    """
    _no_extras(args, extra)
    ids = _ids(delivery_ids, "delivery_ids")
    return physical_batches.run(session_factory(), ids, claimer=str(self.request.id)).as_dict()


@giftq_task("giftq.fulfilment_batch", bind=True, **_DB_RETRY)
def fulfilment_batch(self: Task) -> dict[str, int]:
    """At a cut-off: every physical card due by now goes to the vendor (sent by beat)."""
    sessions = session_factory()
    return physical_batches.run(sessions, claimer=str(self.request.id), release_due=utcnow()).as_dict()


@giftq_task("giftq.fulfilment_reports", **_DB_RETRY)
def fulfilment_reports() -> dict[str, int]:
    """Apply the vendor's report files waiting in the inbox, each all or nothing (sent by beat)."""
    results = physical_reports.process_inbox(session_factory())
    return {
        "applied": sum(r.applied is not None for r in results),
        "refused": sum(r.applied is None for r in results),
    }


@giftq_task("giftq.dispatch_due", **_DB_RETRY)
def dispatch_due() -> dict[str, int]:
    """Queue every due scheduled send and retry (sent by beat)."""
    sessions = session_factory()
    released = 0
    while True:
        with sessions.begin() as session:
            batch = due.release_due(session, limit=1000)
        released += len(batch)
        if len(batch) < 1000:
            return {"released": released}


@giftq_task("giftq.sweep", **_DB_RETRY)
def sweep() -> dict[str, int]:
    """Re-enqueue stuck orders and deliveries (sent by beat)."""
    with session_factory().begin() as session:
        return sweeper.sweep(session).as_dict()


@giftq_task("giftq.place_programs", **_DB_RETRY)
def place_programs() -> dict[str, int]:
    """Place the birthday programs' gifts that are due (sent by beat)."""
    return program_tasks.place_due_programs(session_factory(), now=utcnow())


@giftq_task("giftq.expire_cards", **_DB_RETRY)
def expire_cards() -> dict[str, int]:
    """Expire due cards to breakage and queue the due expiry reminders (sent by beat)."""
    sessions = session_factory()
    totals = {"expired": 0, "cancelled": 0, "reminders": 0}
    while True:
        with sessions.begin() as session:
            report = expiry_jobs.run(session, now=utcnow(), limit=EXPIRY_BATCH)
        totals["expired"] += len(report.expired_cards)
        totals["cancelled"] += len(report.cancelled_deliveries)
        totals["reminders"] += len(report.reminders)
        if len(report.expired_cards) < EXPIRY_BATCH and len(report.reminders) < EXPIRY_BATCH:
            return totals
