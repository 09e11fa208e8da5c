"""What each email says, as data: one frozen dataclass per kind of email.

The order pipeline fills these from its rows and hands them to
:func:`delivery.channels.email.render.render_email`. They hold only what the templates show:

- :class:`GiftEmail`: the gift and its claim code, to the recipient.
- :class:`OrderConfirmationEmail` (with :class:`ConfirmationLine`): the purchaser's receipt.
- :class:`GiftDeliveredEmail`: tells the purchaser that a gift arrived.
- :class:`DeliveryFailedEmail`: tells the purchaser that a gift could not be delivered.
- :class:`GiftShippedEmail`: tells the purchaser that a physical card was shipped (tracking).

Amounts are ``int`` counts of the marketplace currency's minor units (cents, pence; yen
have none); a float or a bool is refused with ``TypeError``. The marketplace code picks
the currency, the number format and the language of the email.

The claim code in :attr:`GiftEmail.code` is a bearer secret: it is left out of ``repr``
so that logging a context, or an exception that shows one, cannot leak it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal, TypeAlias

from ledger.marketplaces import get_marketplace

Channel = Literal["email", "sms", "printable", "physical"]
CHANNELS: frozenset[str] = frozenset({"email", "sms", "printable", "physical"})


def _check_amount(amount: object, what: str = "amount") -> None:
    # bool is an int subclass; True cents is a bug, not an amount.
    if type(amount) is not int:
        raise TypeError(f"{what} must be an int count of minor units, not {type(amount).__name__}")
    if amount < 0:
        raise ValueError(f"{what} must not be negative")


def _normalize_marketplace(obj: object, code: str) -> None:
    # get_marketplace raises UnknownMarketplace; store the canonical upper-case code.
    object.__setattr__(obj, "marketplace", get_marketplace(code).code)


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {sorted(CHANNELS)}, not {channel!r}")


@dataclass(frozen=True, slots=True)
class GiftEmail:
    """The gift itself, sent to its recipient with the claim code."""

    kind: ClassVar[str] = "gift"
    auto_submitted: ClassVar[bool] = False

    recipient_name: str
    recipient_email: str
    sender_name: str
    amount: int
    marketplace: str
    message: str | None
    code: str = field(repr=False)
    design: str = "classic"

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)
        if not self.code.strip():
            raise ValueError("a gift email needs its claim code")

    @property
    def to_name(self) -> str:
        return self.recipient_name

    @property
    def to_addr(self) -> str:
        return self.recipient_email


@dataclass(frozen=True, slots=True)
class ConfirmationLine:
    """One card of an order, as the receipt lists it.

    ``masked_code`` is the masked form (``"••••-H2PW"``) or ``None`` before issuance;
    ``send_at`` is the scheduled send time already formatted in the purchaser's terms,
    or ``None`` for "as soon as possible".
    """

    recipient_name: str
    channel: str
    amount: int
    marketplace: str
    masked_code: str | None = None
    send_at: str | None = None

    def __post_init__(self) -> None:
        _check_channel(self.channel)
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)


@dataclass(frozen=True, slots=True)
class OrderConfirmationEmail:
    """The purchaser's receipt: every card of the order and the totals per currency.

    ``ordered_at`` (timezone-aware) adds the order date to the receipt when given.
    """

    kind: ClassVar[str] = "order_confirmation"
    auto_submitted: ClassVar[bool] = True

    purchaser_name: str
    purchaser_email: str
    order_ref: str
    marketplace: str
    lines: tuple[ConfirmationLine, ...]
    ordered_at: datetime | None = None

    def __post_init__(self) -> None:
        _normalize_marketplace(self, self.marketplace)
        # A list is the natural thing to pass; keep the stored value immutable.
        object.__setattr__(self, "lines", tuple(self.lines))
        if not self.lines:
            raise ValueError("an order confirmation lists at least one card")
        if self.ordered_at is not None and self.ordered_at.tzinfo is None:
            raise ValueError("ordered_at must be timezone-aware")

    @property
    def to_name(self) -> str:
        return self.purchaser_name

    @property
    def to_addr(self) -> str:
        return self.purchaser_email


@dataclass(frozen=True, slots=True)
class _PurchaserNotice:
    """What every notice to the purchaser about one gift holds."""

    auto_submitted: ClassVar[bool] = True

    purchaser_name: str
    purchaser_email: str
    recipient_name: str
    channel: str
    amount: int
    marketplace: str

    def __post_init__(self) -> None:
        _check_channel(self.channel)
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)

    @property
    def to_name(self) -> str:
        return self.purchaser_name

    @property
    def to_addr(self) -> str:
        return self.purchaser_email


@dataclass(frozen=True, slots=True)
class GiftDeliveredEmail(_PurchaserNotice):
    """Tells the purchaser that the gift reached its recipient."""

    kind: ClassVar[str] = "gift_delivered"

    order_ref: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFailedEmail(_PurchaserNotice):
    """Tells the purchaser that the gift could not be delivered, and what to do.

    ``reason`` is a short sentence for a person ("The recipient's mail server says the
    address does not exist."), never a raw provider answer.
    """

    kind: ClassVar[str] = "delivery_failed"

    reason: str
    order_ref: str | None = None


@dataclass(frozen=True, slots=True)
class GiftShippedEmail(_PurchaserNotice):
    """Tells the purchaser that a physical card was shipped, and how to track the parcel.

    ``carrier`` and ``tracking_number`` are the fulfilment vendor's report;
    ``tracking_url`` (https) when the vendor gave one.
    """

    kind: ClassVar[str] = "gift_shipped"

    carrier: str
    tracking_number: str
    tracking_url: str | None = None
    order_ref: str | None = None


EmailContext: TypeAlias = (
    GiftEmail | OrderConfirmationEmail | GiftDeliveredEmail | DeliveryFailedEmail | GiftShippedEmail
)
