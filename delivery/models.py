"""Delivery tables: orders (the outbox), their lines, one delivery row per send, the
attempts log, and suppressed addresses.

Claim codes never live here: a line holds the ledger's ``card_id`` and the code's last
four characters (what ops may see); a send reveals the code from the ledger in memory.
``card_id`` is the ledger's id, not a foreign key: ``delivery`` uses the ledger through
its functions and does not reach into its tables.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from delivery.reasons import CancelReason, FailureReason
from delivery.states import DeliveryStatus
from giftq.db import Base, BigId, EnumText, UTCDateTime, bigid_pk, minor_units, sql_in, utc_datetime, utcnow


class Channel(StrEnum):
    """How a gift reaches its recipient; each has a folder under ``delivery/channels``."""

    EMAIL = "email"
    SMS = "sms"
    PRINTABLE = "printable"
    PHYSICAL = "physical"


class OrderStatus(StrEnum):
    RECEIVED = "received"
    """Committed; issuance is enqueued (this row is the outbox)."""
    ISSUING = "issuing"
    """Some chunks of cards are issued, more to come."""
    ISSUED = "issued"
    """Every card is issued and every send has its delivery row."""
    FAILED = "failed"
    """Issuance was refused for good (``error`` says why); nothing more happens."""
    CANCELLED = "cancelled"
    AWAITING_PAYMENT = "awaiting_payment"
    """Held until the storefront confirms the payment; nothing is issued meanwhile."""
    IN_REVIEW = "in_review"
    """Held for a fraud review until ops release or reject it; nothing is issued meanwhile."""


HELD = frozenset({OrderStatus.AWAITING_PAYMENT, OrderStatus.IN_REVIEW})
"""An order in one of these has no card and no delivery: the outbox and the sweeper pass it by."""


class PaymentState(StrEnum):
    """An order placed awaiting payment; None on an order placed paid."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    OVERDUE = "overdue"
    """Not confirmed by the deadline (``GIFTQ_PAYMENT_DEADLINE_SECONDS``): cancelled."""


class ReviewState(StrEnum):
    """An order held for a fraud review; None on an order never held for one."""

    PENDING = "pending"
    RELEASED = "released"
    REJECTED = "rejected"


class DeliveryKind(StrEnum):
    GIFT = "gift"
    """The card itself, to the recipient."""
    CONFIRMATION = "confirmation"
    """The order confirmation (receipt, masked codes), to the purchaser."""
    DELIVERED_NOTICE = "delivered_notice"
    FAILED_NOTICE = "failed_notice"
    CANCELLED_NOTICE = "cancelled_notice"
    """A held order was cancelled before anything was issued: to the purchaser, with why."""
    EXPIRY_REMINDER = "expiry_reminder"
    """Tells the recipient that their card, still holding its value, expires soon."""


class AttemptOutcome(StrEnum):
    ACCEPTED = "accepted"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    SUPPRESSED = "suppressed"
    """Not attempted: the address answered a permanent failure before."""
    INTERRUPTED = "interrupted"
    """The worker died during the send; the sweeper put the delivery back in the queue."""


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(sql_in("status", list(OrderStatus)), name="status"),
        CheckConstraint(sql_in("payment", list(PaymentState)), name="payment"),
        CheckConstraint(sql_in("review", list(ReviewState)), name="review"),
        Index(None, "status", "updated_at"),
        Index(None, "purchaser_key", "created_at"),
    )

    id: Mapped[bigid_pk]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the validated order: the same key with another order is a conflict."""
    reference: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[OrderStatus] = mapped_column(EnumText(OrderStatus, 16), default=OrderStatus.RECEIVED)
    purchaser_name: Mapped[str] = mapped_column(String(100))
    purchaser_email: Mapped[str] = mapped_column(String(320))
    purchaser_locale: Mapped[str | None] = mapped_column(String(20))
    """The purchaser's language (``de_DE``); None: the first line's marketplace decides."""
    purchaser_key: Mapped[str | None] = mapped_column(String(320))
    """The purchaser's email address, lower-cased: whose cards a day's limit counts."""
    purchaser_country: Mapped[str | None] = mapped_column(String(2))
    """Where the purchaser lives (ISO 3166-1 alpha-2), for unclaimed-property reporting."""
    line_count: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    payment: Mapped[PaymentState | None] = mapped_column(EnumText(PaymentState, 16))
    payment_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """When an unconfirmed payment makes the order overdue (it is then cancelled)."""
    review: Mapped[ReviewState | None] = mapped_column(EnumText(ReviewState, 16))
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    """Last progress, or last re-enqueue by the sweeper."""


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "position"),
        CheckConstraint(sql_in("channel", list(Channel)), name="channel"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[bigid_pk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    position: Mapped[int] = mapped_column(Integer)
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 16))
    amount: Mapped[minor_units]
    marketplace: Mapped[str] = mapped_column(String(2))
    design: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    recipient_name: Mapped[str] = mapped_column(String(100))
    recipient_email: Mapped[str | None] = mapped_column(String(320))
    recipient_locale: Mapped[str | None] = mapped_column(String(20))
    """The recipient's language; None: the line's marketplace decides."""
    recipient_phone: Mapped[str | None] = mapped_column(String(16))
    recipient_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    send_at_local: Mapped[str | None] = mapped_column(String(19))
    """The local wall-clock time asked for (ISO, no offset), kept as given for the receipt."""
    send_at_zone: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[utc_datetime]
    card_id: Mapped[int | None] = mapped_column(BigId, index=True)
    card_last4: Mapped[str | None] = mapped_column(String(4))
    origin: Mapped[str] = mapped_column(String(16), default="purchased", server_default="purchased")
    """``purchased`` or ``promotional`` (the card's origin, which picks its expiry rule)."""


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(sql_in("status", list(DeliveryStatus)), name="status"),
        CheckConstraint(sql_in("kind", list(DeliveryKind)), name="kind"),
        CheckConstraint(sql_in("channel", list(Channel)), name="channel"),
        Index(None, "status", "due_at"),
        Index(None, "status", "updated_at"),
    )

    id: Mapped[bigid_pk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    line_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("order_lines.id"), index=True)
    card_id: Mapped[int | None] = mapped_column(BigId, index=True)
    kind: Mapped[DeliveryKind] = mapped_column(EnumText(DeliveryKind, 24))
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 16))
    status: Mapped[DeliveryStatus] = mapped_column(EnumText(DeliveryStatus, 24))
    to_name: Mapped[str] = mapped_column(String(100))
    to_address: Mapped[str | None] = mapped_column(String(320))
    """Email address or phone number; NULL for a physical shipment (the line has it)."""
    due_at: Mapped[utc_datetime]
    """When a scheduled send is due; for a retry, when the next attempt is due."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    possible_duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Times a worker died while this message was in flight: it may have gone out twice."""
    provider_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    """The provider's id for the accepted message (an SMS message SID): its reports name it."""
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    """Id of the task that moved it to ``sending``: a redelivered task may take it back."""
    last_error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    """Failure notices: why the gift could not be delivered, in the purchaser's words."""
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("deliveries.id"))
    """The delivery this one follows from: a resend's or reissue's original; a notice's gift."""
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[utc_datetime] = mapped_column(default=utcnow)
    """When the status last changed (or the sweeper last re-enqueued it)."""


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (CheckConstraint(sql_in("outcome", list(AttemptOutcome)), name="outcome"),)

    id: Mapped[bigid_pk]
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[AttemptOutcome] = mapped_column(EnumText(AttemptOutcome, 16))
    code: Mapped[int | None] = mapped_column(Integer)
    """The provider's status code (SMTP reply code, HTTP status), if it answered."""
    response: Mapped[str] = mapped_column(Text, default="")
    """The provider's answer, as it gave it (truncated); never holds a claim code."""
    started_at: Mapped[utc_datetime]
    finished_at: Mapped[utc_datetime] = mapped_column(default=utcnow)


class SuppressedAddress(Base):
    """An address that answered a permanent failure: no more sends until ops clears it."""

    __tablename__ = "suppressed_addresses"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    """Lower-cased."""
    code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text, default="")
    delivery_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("deliveries.id"))
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)


def new_delivery_row(
    *,
    order_id: int,
    kind: DeliveryKind,
    channel: Channel,
    to_name: str,
    to_address: str | None,
    due_at: dt.datetime,
    now: dt.datetime,
    status: DeliveryStatus = DeliveryStatus.QUEUED,
    line_id: int | None = None,
    card_id: int | None = None,
    parent_id: int | None = None,
    reason: FailureReason | CancelReason | None = None,
) -> dict[str, Any]:
    """The values of a new delivery row (insert many at once with ``insert(Delivery)``)."""
    return {
        "order_id": order_id,
        "line_id": line_id,
        "card_id": card_id,
        "kind": kind.value,
        "channel": channel.value,
        "status": status.value,
        "to_name": to_name,
        "to_address": to_address,
        "due_at": due_at,
        "attempts": 0,
        "possible_duplicates": 0,
        "reason": reason.value if reason is not None else None,
        "parent_id": parent_id,
        "created_at": now,
        "updated_at": now,
    }
