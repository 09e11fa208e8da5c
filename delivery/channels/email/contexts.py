"""What each email says, as data: one frozen dataclass per kind of email.

The order pipeline fills these from its rows and hands them to
:func:`delivery.channels.email.render.render_email`. They hold only what the templates show:

- :class:`GiftEmail`: the gift and its claim code, to the recipient.
- :class:`OrderConfirmationEmail` (with :class:`ConfirmationLine`): the purchaser's receipt.
- :class:`GiftDeliveredEmail`: tells the purchaser that a gift arrived.
- :class:`DeliveryFailedEmail`: tells the purchaser that a gift could not be delivered.
- :class:`GiftShippedEmail`: tells the purchaser that a physical card was shipped (tracking).
- :class:`OrderCancelledEmail`: tells the purchaser that a held order was cancelled, and why.
- :class:`ExpiryReminderEmail`: tells a recipient that their unused card expires soon.
- :class:`PrintableGiftEmail`: a print-at-home card, to the purchaser who prints it (the
  PDF travels as an attachment; the email itself holds no claim code).

Amounts are ``int`` counts of the marketplace currency's minor units (cents, pence; yen
have none); a float or a bool is refused with ``TypeError``. The marketplace code picks
the currency. ``locale`` is the reader's (``"de_DE"``): it picks the language of the
email and how numbers and dates are written; None means the marketplace's locale.

``message_id`` (``"local@domain"``), when set, is the Message-ID the email goes out
with: the same for every attempt at one delivery (see :func:`delivery.channels.email.message.message_id_for`).

The claim code in :attr:`GiftEmail.code` is a bearer secret: it is left out of ``repr``
so that logging a context, or an exception that shows one, cannot leak it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, Literal, TypeAlias

from babel import Locale, UnknownLocaleError

from delivery.reasons import CancelReason, FailureReason
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


def _check_locale(locale: str | None) -> None:
    if locale is None:
        return
    try:
        Locale.parse(locale)
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValueError(f"locale must be a locale like de_DE or fr, not {locale!r}") from None


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
    locale: str | None = field(default=None, kw_only=True)
    """The recipient's locale; None: the marketplace's."""
    message_id: str | None = field(default=None, kw_only=True)
    valid_until: date | None = field(default=None, kw_only=True)
    """The card's last valid day (its expiry); None: the card does not expire, and the
    email says so."""
    terms_url: str | None = field(default=None, kw_only=True)
    """Where the card's terms are; None: the marketplace's (``GIFTQ_TERMS_URL``)."""

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)
        _check_locale(self.locale)
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
    ``send_at`` is the scheduled send time as the purchaser asked for it (local
    wall-clock time, naive) in the IANA zone ``send_zone``, or ``None`` for "as soon as
    possible". The receipt writes it in the purchaser's language.
    """

    recipient_name: str
    channel: str
    amount: int
    marketplace: str
    masked_code: str | None = None
    send_at: datetime | None = None
    send_zone: str | None = None

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
    locale: str | None = field(default=None, kw_only=True)
    """The purchaser's locale; None: the marketplace's (the order's first line's)."""
    message_id: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _normalize_marketplace(self, self.marketplace)
        _check_locale(self.locale)
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
    """The gift's marketplace: the currency of its amount."""
    locale: str | None = field(default=None, kw_only=True)
    """The purchaser's locale. None: the gift's marketplace's, so callers that know the
    order pass the order's (its first line's marketplace) when the purchaser gave none."""
    message_id: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_channel(self.channel)
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)
        _check_locale(self.locale)

    @property
    def to_name(self) -> str:
        return self.purchaser_name

    @property
    def to_addr(self) -> str:
        return self.purchaser_email


@dataclass(frozen=True, slots=True)
class GiftDeliveredEmail(_PurchaserNotice):
    """Tells the purchaser that the gift went out: what we know, and no more.

    ``delivered`` is False when all we know is that the gift was sent (for email: our
    relay accepted it, and will hand it to the recipient's mail server); the notice then
    says "sent". True only when the channel reported that it reached the recipient.
    ``address`` is where the gift went (email address or phone number), when it has one.
    """

    kind: ClassVar[str] = "gift_delivered"

    order_ref: str | None = None
    address: str | None = None
    delivered: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryFailedEmail(_PurchaserNotice):
    """Tells the purchaser that the gift could not be delivered, and what to do.

    ``reason`` is the key of why (:class:`~delivery.reasons.FailureReason`); the template
    turns it into a sentence in the purchaser's language, with ``address`` (where the
    gift was to go) and ``attempts``. None (an old row's free-text reason) gives a
    generic sentence: prose stored in one language is never shown to a reader of another.
    """

    kind: ClassVar[str] = "delivery_failed"

    reason: FailureReason | None = None
    order_ref: str | None = None
    address: str | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        _PurchaserNotice.__post_init__(self)
        if self.reason is not None:
            # A stored key arrives as a plain string: keep the enum, refuse anything else.
            object.__setattr__(self, "reason", FailureReason(self.reason))
        if type(self.attempts) is not int or self.attempts < 0:
            raise ValueError("attempts must be a count (an int, not negative)")


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


@dataclass(frozen=True, slots=True)
class PrintableGiftEmail:
    """A print-at-home card, sent to the purchaser with its PDF attached.

    The email says who the card is for, that it is attached and ready to print, and gives
    a signed ``download_url`` (:func:`delivery.channels.printable.make_link`) that works
    until ``link_expires_at`` for ``link_max_uses`` downloads. The claim code is on the
    PDF only, never in the email's text. The download link lets anyone who has it fetch
    the card, so it is kept out of ``repr`` too. ``locale`` is the purchaser's.
    """

    kind: ClassVar[str] = "printable"
    # Like the receipt, a message of the shop's to its customer: no vacation replies.
    auto_submitted: ClassVar[bool] = True

    purchaser_name: str
    purchaser_email: str
    recipient_name: str
    amount: int
    marketplace: str
    download_url: str = field(repr=False)
    link_expires_at: datetime
    link_max_uses: int
    order_ref: str | None = None
    locale: str | None = field(default=None, kw_only=True)
    """The purchaser's locale; None: the card's marketplace's."""
    message_id: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)
        _check_locale(self.locale)
        if not self.download_url.startswith(("https://", "http://")):
            raise ValueError("download_url must be an http(s) URL")
        if self.link_expires_at.tzinfo is None:
            raise ValueError("link_expires_at must be timezone-aware")
        if type(self.link_max_uses) is not int or self.link_max_uses < 1:
            raise ValueError("link_max_uses must be a positive int")

    @property
    def to_name(self) -> str:
        return self.purchaser_name

    @property
    def to_addr(self) -> str:
        return self.purchaser_email


@dataclass(frozen=True, slots=True)
class OrderCancelledEmail:
    """Tells the purchaser that their held order was cancelled before any card was issued.

    ``reason`` (:class:`~delivery.reasons.CancelReason`) picks the sentence of why;
    ``deadline_hours`` is how long the payment was given (said when it was overdue).
    ``lines`` are the cards that will not come (no codes: none were issued).
    """

    kind: ClassVar[str] = "order_cancelled"
    auto_submitted: ClassVar[bool] = True

    purchaser_name: str
    purchaser_email: str
    order_ref: str
    marketplace: str
    lines: tuple[ConfirmationLine, ...]
    reason: CancelReason
    deadline_hours: int = 0
    locale: str | None = field(default=None, kw_only=True)
    """The purchaser's locale; None: the marketplace's (the order's first line's)."""
    message_id: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _normalize_marketplace(self, self.marketplace)
        _check_locale(self.locale)
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "reason", CancelReason(self.reason))
        if not self.lines:
            raise ValueError("a cancelled order lists at least one card")
        if type(self.deadline_hours) is not int or self.deadline_hours < 0:
            raise ValueError("deadline_hours must be a count of hours (an int, not negative)")

    @property
    def to_name(self) -> str:
        return self.purchaser_name

    @property
    def to_addr(self) -> str:
        return self.purchaser_email


@dataclass(frozen=True, slots=True)
class ExpiryReminderEmail:
    """Tells a gift's recipient that the card, still unused, expires soon.

    It names the card by the last four characters of its code (``last4``, ``"H2PW"``) and
    who gave it: the claim code itself is in the gift email, never sent again here.
    """

    kind: ClassVar[str] = "expiry_reminder"
    auto_submitted: ClassVar[bool] = True

    recipient_name: str
    recipient_email: str
    sender_name: str
    amount: int
    marketplace: str
    last4: str
    valid_until: date
    terms_url: str | None = None
    locale: str | None = field(default=None, kw_only=True)
    """The recipient's locale; None: the marketplace's."""
    message_id: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _normalize_marketplace(self, self.marketplace)
        _check_locale(self.locale)

    @property
    def to_name(self) -> str:
        return self.recipient_name

    @property
    def to_addr(self) -> str:
        return self.recipient_email


EmailContext: TypeAlias = (
    GiftEmail
    | OrderConfirmationEmail
    | GiftDeliveredEmail
    | DeliveryFailedEmail
    | GiftShippedEmail
    | PrintableGiftEmail
    | OrderCancelledEmail
    | ExpiryReminderEmail
)
