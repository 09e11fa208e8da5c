"""Look-ups for ops: orders (by id or the storefront's reference), cards (by id or by
the code a customer reads out), deliveries and their attempts, always masked.

A card is shown as its id and ``••••-••••-••••-•XXXX`` (the last four characters of its
code); the code itself is never read here. A code typed to find a card is folded as
redemption folds it (case, spaces, dashes, O->0, I/L->1) and only its keyed hash is
looked up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from delivery.channels import registry
from delivery.errors import NotFound
from delivery.models import Delivery, DeliveryAttempt, DeliveryKind, Order, OrderLine, SuppressedAddress
from delivery.states import FINAL_FAILURES, DeliveryStatus
from giftq.db import utcnow
from ledger import CardView, find_card, get_card
from ledger.codes.text import mask
from ledger.errors import LedgerError
from ledger.models import Account, Redemption


@dataclass(frozen=True, slots=True)
class AttemptView:
    number: int
    outcome: str
    code: int | None
    response: str
    finished_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    order_id: int
    line_id: int | None
    kind: str
    channel: str
    status: str
    to_name: str
    to_address: str | None
    card: str | None
    """The card as ops may see it: ``#<id> ••••-XXXX``."""
    attempts: int
    last_error: str | None
    due_at: dt.datetime
    sent_at: dt.datetime | None
    parent_id: int | None
    possible_duplicates: int = 0
    """Times a worker died with this message in flight: it may have gone out twice."""
    log: tuple[AttemptView, ...] = ()


@dataclass(frozen=True, slots=True)
class LineView:
    id: int
    position: int
    channel: str
    amount: int
    marketplace: str
    recipient_name: str
    card: str | None
    send_at: str | None


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    reference: str | None
    status: str
    purchaser_name: str
    purchaser_email: str
    created_at: dt.datetime
    error: str | None
    lines: tuple[LineView, ...]
    deliveries: tuple[DeliveryView, ...]
    payment: str | None = None
    """``pending`` while held for payment, then ``confirmed``, ``declined`` or ``overdue``;
    None for an order placed paid."""
    review: str | None = None
    """``pending`` while held for a fraud review, then ``released`` or ``rejected``."""
    payment_due_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class SuppressedView:
    address: str
    code: int | None
    response: str
    since: dt.datetime


@dataclass(frozen=True, slots=True)
class CardLookup:
    card: CardView
    masked_code: str
    order_id: int | None
    line_id: int | None
    deliveries: tuple[DeliveryView, ...]
    redeemed_by: str | None = None
    """The recipient account (the storefront's customer reference) it was redeemed into."""


def masked_card(card_id: int | None, last4: str | None) -> str | None:
    if card_id is None:
        return None
    return f"#{card_id} {mask(last4)}" if last4 else f"#{card_id}"


def _view(delivery: Delivery, last4: str | None, log: tuple[AttemptView, ...] = ()) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        order_id=delivery.order_id,
        line_id=delivery.line_id,
        kind=delivery.kind,
        channel=delivery.channel,
        status=delivery.status,
        to_name=delivery.to_name,
        to_address=delivery.to_address,
        card=masked_card(delivery.card_id, last4),
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        due_at=delivery.due_at,
        sent_at=delivery.sent_at,
        parent_id=delivery.parent_id,
        possible_duplicates=delivery.possible_duplicates,
        log=log,
    )


def views(session: Session, deliveries: list[Delivery], *, with_log: bool) -> tuple[DeliveryView, ...]:
    card_ids = {d.card_id for d in deliveries if d.card_id is not None}
    last4: dict[int, str] = {}
    if card_ids:
        # Lines hold the current card's last four; a reissued (old) card needs the ledger.
        for card_id in card_ids:
            last4[card_id] = get_card(session, card_id).last4
    logs: dict[int, list[AttemptView]] = {}
    if with_log and deliveries:
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.id)
        )
        for a in attempts:
            logs.setdefault(a.delivery_id, []).append(
                AttemptView(a.number, a.outcome, a.code, a.response, a.finished_at)
            )
    return tuple(_view(d, last4.get(d.card_id or 0), tuple(logs.get(d.id, ()))) for d in deliveries)


def lookup_order(session: Session, order_id: int) -> OrderView:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    return _order_view(session, order)


def lookup_order_by_reference(session: Session, reference: str) -> OrderView:
    """The order the storefront knows as ``reference``; refused when it names several."""
    found = session.scalars(select(Order).where(Order.reference == reference).order_by(Order.id)).all()
    if not found:
        raise NotFound(f"no order has the reference {reference!r}")
    if len(found) > 1:
        raise NotFound(
            f"the reference {reference!r} names orders {', '.join(str(o.id) for o in found)}; give an id"
        )
    return _order_view(session, found[0])


def _order_view(session: Session, order: Order) -> OrderView:
    order_id = order.id
    lines = session.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
    ).all()
    deliveries = list(
        session.scalars(select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.id))
    )
    return OrderView(
        id=order.id,
        reference=order.reference,
        status=order.status,
        purchaser_name=order.purchaser_name,
        purchaser_email=order.purchaser_email,
        created_at=order.created_at,
        error=order.error,
        payment=str(order.payment) if order.payment else None,
        review=str(order.review) if order.review else None,
        payment_due_at=order.payment_due_at,
        lines=tuple(
            LineView(
                id=line.id,
                position=line.position,
                channel=line.channel,
                amount=line.amount,
                marketplace=line.marketplace,
                recipient_name=line.recipient_name,
                card=masked_card(line.card_id, line.card_last4),
                send_at=f"{line.send_at_local} {line.send_at_zone}" if line.send_at_local else None,
            )
            for line in lines
        ),
        deliveries=views(session, deliveries, with_log=True),
    )


def lookup_card(session: Session, card_id: int) -> CardLookup:
    try:
        card = get_card(session, card_id)
    except LedgerError as exc:
        raise NotFound(str(exc)) from None
    return _card_lookup(session, card)


def lookup_card_by_code(session: Session, code: str) -> CardLookup:
    """The card whose code a customer read out (typed or pasted, look-alikes folded).

    A mistyped code (its check character does not match) is told apart from a code no
    card has; neither message holds more of the code than its last four characters.
    """
    try:
        card = find_card(session, code)
    except LedgerError as exc:
        raise NotFound(str(exc)) from None
    return _card_lookup(session, card)


def _card_lookup(session: Session, card: CardView) -> CardLookup:
    card_id = card.card_id
    redeemed_by = session.scalars(
        select(Account.owner)
        .join(Redemption, Redemption.wallet_account_id == Account.id)
        .where(Redemption.card_id == card_id)
    ).one_or_none()
    deliveries = list(
        session.scalars(select(Delivery).where(Delivery.card_id == card_id).order_by(Delivery.id))
    )
    line_id = deliveries[0].line_id if deliveries else None
    return CardLookup(
        card=card,
        masked_code=mask(card.last4),
        order_id=deliveries[0].order_id if deliveries else None,
        line_id=line_id,
        deliveries=views(session, deliveries, with_log=True),
        redeemed_by=redeemed_by,
    )


def list_failures(session: Session, *, order_id: int | None = None, limit: int = 100) -> list[DeliveryView]:
    """Deliveries that failed for good (or bounced), newest first; then the due sends of
    channels that have no back end here, which wait (their ``last_error`` says why).

    A failed gift whose line has a new card since (reissued, or replaced after the vendor
    lost it) is settled, not listed: the replacement is the one to watch.
    """
    superseded = exists().where(
        OrderLine.id == Delivery.line_id,
        Delivery.kind == DeliveryKind.GIFT,
        OrderLine.card_id != Delivery.card_id,
    )
    query = select(Delivery).where(Delivery.status.in_(sorted(FINAL_FAILURES)), ~superseded)
    if order_id is not None:
        query = query.where(Delivery.order_id == order_id)
    deliveries = list(
        session.scalars(query.order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit))
    )
    found = list(views(session, deliveries, with_log=False))
    idle = sorted(set(registry.CHANNELS) - registry.configured())
    if idle and len(found) < limit:
        waiting = select(Delivery).where(
            Delivery.channel.in_(idle),
            Delivery.status.in_([DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED]),
            Delivery.due_at <= utcnow(),
        )
        if order_id is not None:
            waiting = waiting.where(Delivery.order_id == order_id)
        parked = list(
            session.scalars(waiting.order_by(Delivery.due_at, Delivery.id).limit(limit - len(found)))
        )
        found += [
            replace(view, last_error=registry.unconfigured_reason(view.channel))
            for view in views(session, parked, with_log=False)
        ]
    return found


def list_suppressed(session: Session, *, limit: int = 100) -> list[SuppressedAddress]:
    return list(
        session.scalars(select(SuppressedAddress).order_by(SuppressedAddress.created_at.desc()).limit(limit))
    )
