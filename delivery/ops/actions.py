"""What ops do by hand: replay failures, resend to a corrected address, reissue a card
that went to the wrong person, cancel an order, clear a suppressed address.
The look-ups live in :mod:`delivery.ops.lookups` and are re-exported here, so that
``delivery.ops`` is the one place ops code imports from.

Each function works in the caller's transaction and enqueues what it queued after the
caller commits. Codes are never shown: a card is its id and ``••••-XXXX``.

- :func:`replay` puts a final failure back in the queue (attempts continue from where
  they were; the retry schedule starts again for it).
- :func:`resend` sends the same card again, to a corrected address, as a new delivery
  (the original, if still pending, is cancelled).
- :func:`reissue` voids the card, issues a new code for the same line, and delivers it;
  use it when the code may have reached someone else. A redeemed card cannot be reissued.
- :func:`reinstate` replaces an expired card with a new code of the same value (taken back
  from breakage) and delivers it like a reissue; the expired card stays expired.
- :func:`cancel_order` stops everything not yet sent and voids those cards; gifts already
  sent stay valid (their refund is a ledger matter), and the report says which. A held
  order (nothing issued) is cancelled and its purchaser told.
- :func:`hold_for_review`, :func:`release_review`, :func:`reject_review`: the fraud review
  (:mod:`delivery.orders.holds`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from delivery import lifecycle
from delivery.addresses import UndeliverableAddress, deliverable_email, deliverable_phone
from delivery.channels import registry
from delivery.errors import NotFound, OpsRefused
from delivery.models import (
    HELD,
    Channel,
    Delivery,
    DeliveryKind,
    Order,
    OrderLine,
    OrderStatus,
    SuppressedAddress,
)
from delivery.ops.held import HeldView, list_held
from delivery.ops.lookups import (
    AttemptView,
    CardLookup,
    DeliveryView,
    LineView,
    OrderView,
    list_failures,
    list_suppressed,
    lookup_card,
    lookup_order,
    views,
)
from delivery.orders import holds
from delivery.orders.holds import HoldAnswer, hold_for_review, reject_review, release_review
from delivery.orders.processing import card_reference, gift_delivery
from delivery.outbox import enqueue_deliveries
from delivery.reasons import CancelReason
from delivery.states import FINAL_FAILURES, PENDING
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from ledger import CardSpec, get_card, issue_cards, reinstate_card, void_card
from ledger.codes.text import mask
from ledger.errors import InvalidState
from ledger.models import CardStatus

__all__ = [
    "AttemptView",
    "CancelReport",
    "CardLookup",
    "DeliveryView",
    "HeldView",
    "HoldAnswer",
    "LineView",
    "OrderView",
    "cancel_order",
    "hold_for_review",
    "list_failures",
    "list_held",
    "list_suppressed",
    "lookup_card",
    "lookup_order",
    "reinstate",
    "reissue",
    "reject_review",
    "release_review",
    "replay",
    "replay_failures",
    "resend",
    "unsuppress",
]

REACHED = frozenset({S.SENDING, S.SENT, S.DELIVERED})
"""A gift in one of these may be in someone's inbox: its card stays valid on cancel."""


@dataclass(frozen=True, slots=True)
class CancelReport:
    order_id: int
    cancelled_deliveries: list[int] = field(default_factory=list)
    """Every send of the order that had not gone out: gifts, resends, reissues, notices."""
    voided_cards: list[int] = field(default_factory=list)
    """Cards that never went out, voided by this cancel."""
    kept_cards: list[int] = field(default_factory=list)
    """Cards already sent (or in flight): still valid (refunding them is a ledger matter)."""
    redeemed_cards: list[int] = field(default_factory=list)
    """Cards already redeemed into someone's balance."""
    already_voided_cards: list[int] = field(default_factory=list)
    """Cards voided before this cancel (replaced by a reissue)."""
    expired_cards: list[int] = field(default_factory=list)
    """Cards that expired before this cancel (their value is in breakage)."""


def _delivery(session: Session, delivery_id: int) -> Delivery:
    delivery = session.scalars(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    return delivery


def _checked_email(address: str) -> str:
    try:
        return deliverable_email(address)
    except UndeliverableAddress as exc:
        raise OpsRefused(f"email: {exc}") from None


def _refuse_spent_card(session: Session, delivery: Delivery, what: str) -> None:
    """A redeemed, voided or expired card is not sent again: its code is worth nothing to
    the recipient."""
    if delivery.card_id is None:
        return
    card = get_card(session, delivery.card_id)
    if card.status == CardStatus.REDEEMED:
        raise OpsRefused(
            f"the card of delivery {delivery.id} ({mask(card.last4)}) is redeemed; nothing to {what}"
        )
    if card.status == CardStatus.VOIDED:
        raise OpsRefused(
            f"the card of delivery {delivery.id} ({mask(card.last4)}) is voided; nothing to {what} "
            "(giftq ops reissue gives the line a new code)"
        )
    if card.status == CardStatus.EXPIRED:
        raise OpsRefused(
            f"the card of delivery {delivery.id} ({mask(card.last4)}) expired; nothing to {what} "
            f"(giftq ops reinstate {card.card_id} gives it a new code of the same value)"
        )


def _refuse_unconfigured(channel: str) -> None:
    if Channel(channel) not in registry.configured():
        raise OpsRefused(f"{registry.unconfigured_reason(channel)}; nothing can send it yet")


def _refuse_undeliverable(delivery: Delivery) -> None:
    """A replay to an address no relay can carry would only fail again: say so, and what helps."""
    if delivery.channel != Channel.EMAIL:
        return
    try:
        deliverable_email(delivery.to_address or "")
    except UndeliverableAddress as exc:
        hint = (
            f"; send it to a corrected address: giftq ops resend {delivery.id} --email ADDRESS"
            if delivery.kind == DeliveryKind.GIFT
            else ""
        )
        raise OpsRefused(
            f"delivery {delivery.id} can never be sent to {delivery.to_address!r}: {exc}{hint}"
        ) from None


def _refuse_if_suppressed(session: Session, address: str | None) -> None:
    if address and session.get(SuppressedAddress, address.lower()) is not None:
        raise OpsRefused(
            f"{address} is suppressed after a permanent failure; "
            f"clear it first (giftq ops unsuppress {address}) if it works again"
        )


# --- actions ------------------------------------------------------------------------------


def replay(session: Session, delivery_id: int) -> DeliveryView:
    """Queue a final failure again (after its cause was fixed)."""
    delivery = _delivery(session, delivery_id)
    if delivery.status not in FINAL_FAILURES:
        raise OpsRefused(f"delivery {delivery_id} is {delivery.status}; only final failures are replayed")
    _refuse_unconfigured(delivery.channel)
    _refuse_spent_card(session, delivery, "send")
    _refuse_undeliverable(delivery)
    _refuse_if_suppressed(session, delivery.to_address)
    lifecycle.requeue(delivery, utcnow())
    session.flush()
    enqueue_deliveries(session, delivery.channel, [delivery.id])
    return views(session, [delivery], with_log=False)[0]


def replay_failures(session: Session, *, order_id: int | None = None, limit: int = 1000) -> list[int]:
    """Replay every listed failure that can go again (suppressed addresses are skipped)."""
    replayed = []
    for view in list_failures(session, order_id=order_id, limit=limit):
        if view.status not in FINAL_FAILURES:
            continue  # waiting for a channel's back end: nothing to replay
        try:
            replay(session, view.id)
        except OpsRefused:
            continue
        replayed.append(view.id)
    return replayed


def resend(
    session: Session, delivery_id: int, *, email: str | None = None, phone: str | None = None
) -> DeliveryView:
    """Send the same card again to a corrected address (email or mobile number), as a new delivery."""
    original = _delivery(session, delivery_id)
    if original.kind != DeliveryKind.GIFT or original.channel not in (Channel.EMAIL, Channel.SMS):
        raise OpsRefused(
            f"delivery {delivery_id} is not an email or text gift; only those can be resent to an address"
        )
    address = _corrected_address(Channel(original.channel), email=email, phone=phone)
    if original.status == S.SENDING:
        raise OpsRefused(f"delivery {delivery_id} is being sent right now; try again in a minute")
    if original.status == S.CANCELLED:
        raise OpsRefused(f"delivery {delivery_id} was cancelled")
    line = session.get_one(OrderLine, original.line_id)
    if line.card_id != original.card_id:
        raise OpsRefused(f"the card of delivery {delivery_id} was reissued; resend the newest delivery")
    _refuse_spent_card(session, original, "resend")
    _refuse_if_suppressed(session, address)
    now = utcnow()
    if original.status in PENDING:
        lifecycle.cancel(original, now)
    return _new_gift(
        session,
        line,
        card_id=original.card_id or 0,
        address=address,
        to_name=original.to_name,
        parent_id=original.id,
        now=now,
    )


def _corrected_address(channel: Channel, *, email: str | None, phone: str | None) -> str:
    wanted, given, other = (
        ("--email", email, phone) if channel == Channel.EMAIL else ("--phone", phone, email)
    )
    if given is None or other is not None:
        raise OpsRefused(f"a {channel} gift is resent with {wanted} and nothing else")
    if channel == Channel.EMAIL:
        return _checked_email(given)
    try:
        return deliverable_phone(given)
    except UndeliverableAddress as exc:
        raise OpsRefused(f"phone: {exc}") from None


def reissue(
    session: Session, line_id: int, *, email: str | None = None, phone: str | None = None
) -> DeliveryView:
    """Void the line's card, issue a new code for the same value, and deliver it.

    An email or text gift may go to a corrected address (``email`` / ``phone``); by
    default it goes where the last one went.
    """
    line = session.scalars(
        select(OrderLine)
        .where(OrderLine.id == line_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if line is None or line.card_id is None:
        raise NotFound(f"no issued order line {line_id}")
    old_card = line.card_id
    current = get_card(session, old_card)
    if current.status in (CardStatus.REDEEMED, CardStatus.VOIDED, CardStatus.EXPIRED):
        raise OpsRefused(
            f"the card of line {line_id} ({mask(current.last4)}) is {current.status}; "
            "only an unredeemed, valid card can be reissued"
            + (f" (giftq ops reinstate {old_card})" if current.status == CardStatus.EXPIRED else "")
        )
    deliveries = list(
        session.scalars(
            select(Delivery)
            .where(Delivery.card_id == old_card, Delivery.kind == DeliveryKind.GIFT)
            .order_by(Delivery.id)
            .with_for_update()
        )
    )
    if any(d.status == S.SENDING for d in deliveries):
        raise OpsRefused(f"the card of line {line_id} is being sent right now; try again in a minute")
    last = deliveries[-1] if deliveries else None
    address = _reissue_address(line, last, email=email, phone=phone)
    _refuse_if_suppressed(session, address)
    try:
        void_card(session, old_card, idempotency_key=f"giftq:reissue:void:{old_card}")
    except InvalidState as exc:
        raise OpsRefused(f"line {line_id}: {exc}") from None
    (card,) = issue_cards(
        session,
        [
            CardSpec(
                # The card's own value: a swap may have moved it to another marketplace.
                marketplace=current.marketplace,
                amount=current.amount,
                active=line.channel != Channel.PHYSICAL,
                reference=card_reference(line.order_id, line.position),
                origin=line.origin,
            )
        ],
        idempotency_key=f"giftq:reissue:line:{line_id}:replacing:{old_card}",
    )
    now = utcnow()
    for d in deliveries:
        if d.status in PENDING:
            lifecycle.cancel(d, now)
    line.card_id, line.card_last4 = card.card_id, card.last4
    to_name = last.to_name if last else line.recipient_name
    return _new_gift(
        session,
        line,
        card_id=card.card_id,
        address=address,
        to_name=to_name,
        parent_id=last.id if last else None,
        now=now,
    )


def reinstate(
    session: Session, card_id: int, *, email: str | None = None, phone: str | None = None
) -> DeliveryView:
    """Replace an expired card: a new code of the same value, delivered to the recipient.

    Consumer rules may require it (a recipient who asks after the expiry). The value comes
    back from breakage (:func:`ledger.reinstate_card`, once per card); the new card follows
    its line as a reissue does, and goes where the last gift went unless ``email`` /
    ``phone`` correct the address.
    """
    current = get_card(session, card_id)
    if current.status != CardStatus.EXPIRED:
        raise OpsRefused(
            f"card {card_id} ({mask(current.last4)}) is {current.status}; only an expired card is reinstated"
        )
    line = session.scalars(
        select(OrderLine)
        .where(OrderLine.card_id == card_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if line is None:
        raise OpsRefused(
            f"card {card_id} is not the card of an order line now (reinstated before?): "
            "giftq ops card shows what replaced it"
        )
    deliveries = list(
        session.scalars(
            select(Delivery)
            .where(Delivery.card_id == card_id, Delivery.kind == DeliveryKind.GIFT)
            .order_by(Delivery.id)
        )
    )
    last = deliveries[-1] if deliveries else None
    address = _reissue_address(line, last, email=email, phone=phone)
    _refuse_if_suppressed(session, address)
    try:
        card = reinstate_card(session, card_id, idempotency_key=f"giftq:reinstate:{card_id}")
    except InvalidState as exc:
        raise OpsRefused(str(exc)) from None
    line.card_id, line.card_last4 = card.card_id, card.last4
    return _new_gift(
        session,
        line,
        card_id=card.card_id,
        address=address,
        to_name=last.to_name if last else line.recipient_name,
        parent_id=last.id if last else None,
        now=utcnow(),
    )


def _reissue_address(
    line: OrderLine, last: Delivery | None, *, email: str | None, phone: str | None
) -> str | None:
    channel = Channel(line.channel)
    if email is not None or phone is not None:
        if channel not in (Channel.EMAIL, Channel.SMS):
            raise OpsRefused(f"line {line.id} is {channel}: it has no address to correct")
        return _corrected_address(channel, email=email, phone=phone)
    if last is not None:
        return last.to_address
    return {Channel.EMAIL: line.recipient_email, Channel.SMS: line.recipient_phone}.get(channel)


def _new_gift(
    session: Session,
    line: OrderLine,
    *,
    card_id: int,
    address: str | None,
    to_name: str,
    parent_id: int | None,
    now: dt.datetime,
) -> DeliveryView:
    delivery = Delivery(
        **gift_delivery(line, card_id, to_address=address, now=now, parent_id=parent_id, to_name=to_name)
    )
    session.add(delivery)
    session.flush()
    if delivery.status == S.QUEUED:
        enqueue_deliveries(session, delivery.channel, [delivery.id])
    return views(session, [delivery], with_log=False)[0]


def cancel_order(session: Session, order_id: int) -> CancelReport:
    """Stop whatever of the order is not sent yet, and void those cards."""
    order = session.scalars(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status == OrderStatus.CANCELLED:
        raise OpsRefused(f"order {order_id} is already cancelled")
    now = utcnow()
    report = CancelReport(order_id)
    if order.status in HELD:
        # Nothing of it was issued or sent: the purchaser is told, as for any held order's end.
        holds.cancel_held(session, order, CancelReason.CANCELLED, "cancelled by ops while held", now)
        return report
    gifts: dict[int, list[Delivery]] = {}
    for d in session.scalars(
        select(Delivery)
        .where(Delivery.order_id == order_id, Delivery.kind == DeliveryKind.GIFT)
        .order_by(Delivery.id)
        .with_for_update()
    ):
        # Every unsent send stops, whichever card it carries: resends and reissues too.
        if d.status in PENDING:
            lifecycle.cancel(d, now)
            report.cancelled_deliveries.append(d.id)
        if d.card_id is not None:
            gifts.setdefault(d.card_id, []).append(d)
    for card_id, deliveries in gifts.items():
        status = get_card(session, card_id).status
        if status == CardStatus.REDEEMED:
            report.redeemed_cards.append(card_id)
        elif status == CardStatus.VOIDED:
            report.already_voided_cards.append(card_id)
        elif status == CardStatus.EXPIRED:
            report.expired_cards.append(card_id)
        elif any(d.status in REACHED for d in deliveries):
            report.kept_cards.append(card_id)
        else:
            void_card(session, card_id, idempotency_key=f"giftq:cancel:void:{card_id}")
            report.voided_cards.append(card_id)
    session.execute(
        update(Delivery)
        .where(
            Delivery.order_id == order_id,
            Delivery.kind != DeliveryKind.GIFT,
            Delivery.status.in_(sorted(PENDING)),
        )
        .values(status=S.CANCELLED, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    order.status = OrderStatus.CANCELLED
    order.updated_at = now
    session.flush()
    return report


def unsuppress(session: Session, address: str) -> bool:
    """Let mail go to ``address`` again; False if it was not suppressed."""
    row = session.get(SuppressedAddress, address.lower())
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True
