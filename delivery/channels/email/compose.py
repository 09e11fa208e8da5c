"""What each email of a batch says, composed from our rows.

:func:`load` reads, once per batch, what the emails need besides their delivery rows
(the order lines; for a notice, the gift it is about; for gifts, the ledger's cards; for
a notice about a shipped physical card, its tracking);
:func:`context` turns one delivery into the email channel's context. A gift's claim
code is revealed here, into memory only (the context keeps it out of ``repr``).

Each email is written for its reader: the gift in ``recipient_locale`` (default: the
line's marketplace's), the purchaser's receipt and notices in ``purchaser_locale``
(default: the marketplace of the order's first line), whatever marketplace the gift is
in. A failure notice says why from the key its row stores, with the failed gift's
address and attempt count; so does the notice of a held order's cancel, listing its
cards. Every email carries its delivery's stable Message-ID.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from delivery import reasons
from delivery.channels.email import (
    ConfirmationLine,
    DeliveryFailedEmail,
    EmailContext,
    ExpiryReminderEmail,
    GiftDeliveredEmail,
    GiftEmail,
    GiftShippedEmail,
    OrderCancelledEmail,
    OrderConfirmationEmail,
)
from delivery.channels.email.message import message_id_for
from delivery.channels.physical.tracking import Shipment, shipments
from delivery.expiry import disclosure
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine
from delivery.reasons import CancelReason
from delivery.states import DeliveryStatus
from ledger import CardView, ClaimCode, get_cards, reveal_codes
from ledger.codes.text import mask
from ledger.errors import NotFound
from ledger.marketplaces import get_marketplace

_NOTICES = (DeliveryKind.DELIVERED_NOTICE, DeliveryKind.FAILED_NOTICE)
_WHOLE_ORDER = (DeliveryKind.CONFIRMATION, DeliveryKind.CANCELLED_NOTICE)
"""Emails about a whole order: they list every line."""
_ABOUT_A_CARD = (DeliveryKind.GIFT, DeliveryKind.EXPIRY_REMINDER)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a batch's emails need besides their rows, loaded once per batch."""

    lines_by_order: dict[int, list[OrderLine]]
    lines_by_id: dict[int, OrderLine]
    parents: dict[int, Delivery]
    codes: dict[int, ClaimCode]
    """The batch's gift codes by card id, decrypted in one query, in memory only."""
    cards: dict[int, CardView]
    """The cards of the batch's gifts and reminders (masked): what their emails disclose; a
    gift says its card's value, which a swap may have put in another marketplace than its line's."""
    shipments: dict[int, Shipment]
    """Shipped physical gifts (by delivery id) that a delivered notice of the batch is about."""


def load(session: Session, deliveries: list[Delivery]) -> Loaded:
    lines = _lines_of(session, deliveries)
    by_id = {line.id: line for order_lines in lines.values() for line in order_lines}
    card_ids = [d.card_id for d in deliveries if d.kind == DeliveryKind.GIFT and d.card_id is not None]
    disclosed = [d.card_id for d in deliveries if d.kind in _ABOUT_A_CARD and d.card_id is not None]
    shipped = [
        d.parent_id
        for d in deliveries
        if d.kind == DeliveryKind.DELIVERED_NOTICE
        and d.parent_id is not None
        and (line := by_id.get(d.line_id or 0)) is not None
        and line.channel == Channel.PHYSICAL
    ]
    return Loaded(
        lines,
        by_id,
        _parents(session, deliveries),
        reveal_codes(session, card_ids),
        get_cards(session, disclosed),
        shipments(session, shipped),
    )


def _lines_of(session: Session, deliveries: list[Delivery]) -> dict[int, list[OrderLine]]:
    """Lines by order, in order: every line for a confirmation; otherwise the delivery's
    own line, and for a notice also the order's first (whose marketplace speaks for a
    purchaser who gave no locale)."""
    confirm = {d.order_id for d in deliveries if d.kind in _WHOLE_ORDER}
    notified = {d.order_id for d in deliveries if d.kind in _NOTICES}
    own = {d.line_id for d in deliveries if d.line_id is not None}
    by_order: dict[int, list[OrderLine]] = {}
    if confirm or own:
        query = select(OrderLine).where(
            or_(
                OrderLine.order_id.in_(confirm),
                OrderLine.id.in_(own),
                and_(OrderLine.order_id.in_(notified), OrderLine.position == 0),
            )
        )
        for line in session.scalars(query.order_by(OrderLine.order_id, OrderLine.position)):
            by_order.setdefault(line.order_id, []).append(line)
    return by_order


def _parents(session: Session, deliveries: list[Delivery]) -> dict[int, Delivery]:
    ids = {d.parent_id for d in deliveries if d.parent_id is not None and d.kind != DeliveryKind.GIFT}
    if not ids:
        return {}
    return {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}


def order_ref(order: Order) -> str:
    return order.reference or f"GQ-{order.id}"


def purchaser_locale(order: Order, order_lines: list[OrderLine]) -> str:
    """The purchaser's locale: theirs if given, else that of the first line's marketplace."""
    if order.purchaser_locale:
        return order.purchaser_locale
    return get_marketplace(order_lines[0].marketplace).locale


def _send_at(line: OrderLine) -> dt.datetime | None:
    return dt.datetime.fromisoformat(line.send_at_local) if line.send_at_local else None


def context(delivery: Delivery, order: Order, loaded: Loaded) -> EmailContext:
    """The email channel's context for one delivery (raises on rows that cannot make one)."""
    order_lines = loaded.lines_by_order.get(order.id, [])
    message_id = message_id_for(delivery.id, delivery.created_at)
    if delivery.kind == DeliveryKind.CONFIRMATION:
        return OrderConfirmationEmail(
            purchaser_name=order.purchaser_name,
            purchaser_email=delivery.to_address or order.purchaser_email,
            order_ref=order_ref(order),
            marketplace=order_lines[0].marketplace,
            lines=tuple(_listed(line, planned=True) for line in order_lines),
            ordered_at=order.created_at,
            locale=purchaser_locale(order, order_lines),
            message_id=message_id,
        )
    if delivery.kind == DeliveryKind.CANCELLED_NOTICE:
        return _cancelled(delivery, order, order_lines, message_id)
    line = loaded.lines_by_id[delivery.line_id or 0]
    if delivery.kind == DeliveryKind.GIFT:
        if delivery.card_id is None:
            raise ValueError(f"gift delivery {delivery.id} has no card")
        code = loaded.codes.get(delivery.card_id)
        card = loaded.cards.get(delivery.card_id)
        if code is None or card is None:
            raise NotFound(f"no card {delivery.card_id}")
        told = disclosure.of_card(card)
        return GiftEmail(
            recipient_name=delivery.to_name,
            recipient_email=delivery.to_address or "",
            sender_name=order.purchaser_name,
            amount=card.amount,
            marketplace=card.marketplace,
            message=line.message,
            code=code.reveal(),
            design=line.design,
            locale=line.recipient_locale,
            message_id=message_id,
            valid_until=told.valid_until,
            terms_url=told.terms_url,
        )
    if delivery.kind == DeliveryKind.EXPIRY_REMINDER:
        return _reminder(delivery, order, line, loaded, message_id)
    gift = loaded.parents.get(delivery.parent_id or 0)
    recipient_name = gift.to_name if gift else line.recipient_name
    address = gift.to_address if gift else (line.recipient_email or line.recipient_phone)
    locale = purchaser_locale(order, order_lines)
    shipment = loaded.shipments.get(delivery.parent_id or 0)
    if delivery.kind == DeliveryKind.DELIVERED_NOTICE and shipment is not None:
        # A physical card is "delivered" when the vendor ships it: say how to track it.
        return GiftShippedEmail(
            purchaser_name=order.purchaser_name,
            purchaser_email=delivery.to_address or order.purchaser_email,
            recipient_name=recipient_name,
            channel=line.channel,
            amount=line.amount,
            marketplace=line.marketplace,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            tracking_url=shipment.tracking_url,
            order_ref=order_ref(order),
            locale=locale,
            message_id=message_id,
        )
    if delivery.kind == DeliveryKind.DELIVERED_NOTICE:
        return GiftDeliveredEmail(
            purchaser_name=order.purchaser_name,
            purchaser_email=delivery.to_address or order.purchaser_email,
            recipient_name=recipient_name,
            channel=line.channel,
            amount=line.amount,
            marketplace=line.marketplace,
            order_ref=order_ref(order),
            address=address,
            # "Delivered" only when the channel reported it; an accepted email is "sent".
            delivered=gift is not None and gift.status == DeliveryStatus.DELIVERED,
            locale=locale,
            message_id=message_id,
        )
    return DeliveryFailedEmail(
        purchaser_name=order.purchaser_name,
        purchaser_email=delivery.to_address or order.purchaser_email,
        recipient_name=recipient_name,
        channel=line.channel,
        amount=line.amount,
        marketplace=line.marketplace,
        # An old row's English sentence is not shown: it becomes the generic sentence.
        reason=reasons.parse(delivery.reason),
        order_ref=order_ref(order),
        address=address,
        attempts=gift.attempts if gift else 0,
        locale=locale,
        message_id=message_id,
    )


def _listed(line: OrderLine, *, planned: bool) -> ConfirmationLine:
    """A line as an email about its whole order lists it; ``planned``: with its masked card
    and send time (a receipt), else only whom and what (a cancelled order's)."""
    if not planned:
        return ConfirmationLine(line.recipient_name, line.channel, line.amount, line.marketplace)
    return ConfirmationLine(
        recipient_name=line.recipient_name,
        channel=line.channel,
        amount=line.amount,
        marketplace=line.marketplace,
        masked_code=mask(line.card_last4) if line.card_last4 else None,
        send_at=_send_at(line),
        send_zone=line.send_at_zone,
    )


def _cancelled(
    delivery: Delivery, order: Order, order_lines: list[OrderLine], message_id: str
) -> OrderCancelledEmail:
    deadline = order.payment_due_at - order.created_at if order.payment_due_at else dt.timedelta()
    return OrderCancelledEmail(
        purchaser_name=order.purchaser_name,
        purchaser_email=delivery.to_address or order.purchaser_email,
        order_ref=order_ref(order),
        marketplace=order_lines[0].marketplace,
        lines=tuple(_listed(line, planned=False) for line in order_lines),
        reason=CancelReason(delivery.reason or CancelReason.CANCELLED),
        # Whole hours, rounded up: a deadline of 90 minutes reads "2 hours", never "1".
        deadline_hours=-(-int(deadline.total_seconds()) // 3600),
        locale=purchaser_locale(order, order_lines),
        message_id=message_id,
    )


def _reminder(
    delivery: Delivery, order: Order, line: OrderLine, loaded: Loaded, message_id: str
) -> ExpiryReminderEmail:
    card = loaded.cards.get(delivery.card_id or 0)
    if card is None:
        raise NotFound(f"no card {delivery.card_id}")
    told = disclosure.of_card(card)
    if told.valid_until is None:
        raise ValueError(f"card {card.card_id} does not expire: no reminder to send")
    return ExpiryReminderEmail(
        recipient_name=delivery.to_name,
        recipient_email=delivery.to_address or "",
        sender_name=order.purchaser_name,
        amount=card.amount,
        marketplace=card.marketplace,
        last4=card.last4,
        valid_until=told.valid_until,
        terms_url=told.terms_url,
        locale=line.recipient_locale,
        message_id=message_id,
    )
