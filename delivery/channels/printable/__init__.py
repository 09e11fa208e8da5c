"""Print-at-home gift cards: a one-page PDF the purchaser prints and hands over.

- :class:`PrintableCard` (``context``): what the card shows; its ``repr`` hides the code.
- :func:`render_printable` (``render``): the card as PDF bytes, drawn with fpdf2, a vector
  QR code (segno) to the redeem page with the code in the URL fragment, and embedded OFL
  fonts that cover Latin, Greek, Cyrillic, Japanese, Hebrew and Arabic.
- :func:`make_link`, :func:`redeem_link` (``links``): signed download links that expire and
  allow a limited number of downloads, counted atomically in ``printable_links``.

The PDF holds the claim code in clear. It is rendered when it is sent or downloaded and
never stored: not on disk, not in a column, not in a task message. What is stored is the
delivery's id (the code stays encrypted in the ledger) and, for a download link, the
link's row, which names the delivery and nothing else.

Errors derive from :class:`PrintableError` (``errors``).
"""

from delivery.channels.printable.context import PrintableCard
from delivery.channels.printable.errors import (
    InvalidCard,
    LinkBadSignature,
    LinkExpired,
    LinkRefused,
    LinkUnknown,
    LinkUsedUp,
    PrintableError,
)
from delivery.channels.printable.links import make_link, make_token, redeem_link
from delivery.channels.printable.render import render_printable

__all__ = [
    "InvalidCard",
    "LinkBadSignature",
    "LinkExpired",
    "LinkRefused",
    "LinkUnknown",
    "LinkUsedUp",
    "PrintableCard",
    "PrintableError",
    "make_link",
    "make_token",
    "redeem_link",
    "render_printable",
]
