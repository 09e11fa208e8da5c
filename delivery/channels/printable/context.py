"""What a printable card shows, as one frozen value: :class:`PrintableCard`.

The pipeline fills it from the order line and the revealed claim code and hands it to
:func:`delivery.channels.printable.render.render_printable`. The claim code is a bearer
secret: it is left out of ``repr`` (and so out of logs and tracebacks that show the
value), and errors name the field that is wrong, never its content.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from babel import Locale, UnknownLocaleError

from delivery.channels.printable.errors import InvalidCard
from delivery.channels.printable.text import MAX_MESSAGE, MAX_NAME
from ledger.codes.text import display, normalize
from ledger.errors import CodeMistyped, UnknownMarketplace
from ledger.marketplaces import get_marketplace


@dataclass(frozen=True, slots=True)
class PrintableCard:
    """One gift card to print.

    ``amount`` is an ``int`` of the marketplace currency's minor units; ``locale`` is the
    recipient's (``"de_DE"``, ``"ja"``), ``None`` for the marketplace's own; ``code`` is the
    claim code as typed or grouped (it is stored normalised and shown grouped).
    """

    recipient_name: str
    sender_name: str
    amount: int
    marketplace: str
    message: str | None
    code: str = field(repr=False)
    design: str = "classic"
    locale: str | None = None
    valid_until: dt.date | None = None
    """The card's last valid day; None: it does not expire (the card says so)."""
    terms_url: str | None = None
    """Where the card's terms are; None: the marketplace's."""

    def __post_init__(self) -> None:
        for name in ("recipient_name", "sender_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidCard(f"{name} must be a non-empty string")
            if len(value) > MAX_NAME:
                raise InvalidCard(f"{name} is longer than {MAX_NAME} characters")
        if self.message is not None and not isinstance(self.message, str):
            raise InvalidCard("message must be a string or None")
        if self.message is not None and len(self.message) > MAX_MESSAGE:
            raise InvalidCard(f"message is longer than {MAX_MESSAGE} characters")
        # bool is an int; True cents is a bug, not an amount.
        if type(self.amount) is not int:
            raise TypeError(f"amount must be an int count of minor units, not {type(self.amount).__name__}")
        if self.amount <= 0:
            raise InvalidCard("amount must be positive")
        try:
            object.__setattr__(self, "marketplace", get_marketplace(self.marketplace).code)
        except UnknownMarketplace as exc:
            raise InvalidCard(str(exc)) from None
        try:
            object.__setattr__(self, "code", normalize(self.code))
        except CodeMistyped:
            raise InvalidCard("code is not a well-formed claim code") from None
        if not isinstance(self.design, str) or not self.design:
            raise InvalidCard("design must be a design name")
        if self.locale is not None:
            try:
                Locale.parse(self.locale.replace("-", "_"))
            except (ValueError, TypeError, UnknownLocaleError):
                raise InvalidCard(f"locale {self.locale!r} is not a locale") from None

    @property
    def grouped_code(self) -> str:
        """``XXXX-XXXX-XXXX-XXXXX``, as printed."""
        return display(self.code)
