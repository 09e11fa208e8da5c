"""Rendering a gift text: who it is from, the amount, the claim code and where to redeem it.

Templates are ``<templates_dir>/sms/<kind>/<language>.txt`` (Jinja2, plain text: no
autoescape, undefined variables raise). The language is the reader's (``locale``, e.g.
``de_AT`` reads ``de``) when a template exists for it, else English; Japanese readers
read English, because Japanese text is UCS-2 (70 units a segment) and a 20-character
code plus a link does not leave room for a sentence. The amount is formatted by Babel
for the reader's locale in the card's marketplace currency
(:func:`delivery.channels.email.i18n.format_money`), so a fr_CA reader of a US card sees
``25,00 $ US``. The link is ``<public_base_url>/<marketplace>/redeem``; the code is never
in it (links end up in logs).

Two segments. Every text says until when the card is valid (or that it does not
expire) and where its terms are, which a single segment has no room for beside the
code and the link. Every template, for every marketplace and language, fits two GSM-7
segments (306 septets) with a sender name of up to 20 characters, amounts up to
2,000.00 (¥200,000) and public base and terms URLs of up to 25 and 45 characters
(``https://gifts.example.com``); ``tests/delivery/channels/sms/test_render.py`` renders
them all and counts. To stay in GSM-7, variable text is folded to GSM-7 where it can be:
Babel's no-break spaces become spaces, ``￥`` becomes ``¥``, and a name whose letters all
have a plain form is written with it (``Zoë`` -> ``Zoe``, ``François`` -> ``Francois``:
GSM-7 has no ``ë`` and only a capital ``Ç``). A name in another script (``山田太郎``)
keeps its letters and makes the text UCS-2, which then takes two segments.

A longer name is shortened with an ellipsis (``...`` in GSM-7, ``…`` in UCS-2), never
below :data:`MIN_NAME_CHARS` characters, to the longest form that keeps the fewest
segments the text can have. A text that still needs more than ``GIFTQ_SMS_MAX_SEGMENTS``
segments is refused with :class:`~delivery.channels.sms.errors.TooManySegments`: the
code is never cut.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from delivery.channels.email.i18n import format_money
from delivery.channels.email.render import brand_name, redeem_url
from delivery.channels.sms.errors import TooManySegments
from delivery.channels.sms.segments import Encoding, count_segments, fold_if_gsm7, is_gsm7, to_gsm7
from giftq.settings import get_settings
from giftq.text import one_line
from ledger.codes import text as code_text
from ledger.expiry_policy import terms_url
from ledger.marketplaces import get_marketplace

SOURCE_LANGUAGE = "en"
MIN_NAME_CHARS = 8
"""A shortened name keeps at least this many characters before its ellipsis."""


@dataclass(frozen=True, slots=True)
class GiftText:
    """The gift, by text message to its recipient. The code is left out of ``repr``.

    ``amount`` is an ``int`` count of the marketplace currency's minor units; ``locale``
    is the reader's (``de_DE``, ``fr-CA``, ``en``), by default the marketplace's.
    """

    kind: ClassVar[str] = "gift"

    sender_name: str
    amount: int
    marketplace: str
    code: str = field(repr=False)
    locale: str | None = None
    valid_until: dt.date | None = None
    """The card's last valid day; None: it does not expire (the text says so)."""
    terms_url: str | None = None
    """Where the card's terms are; None: the marketplace's."""

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError(f"amount must be an int count of minor units, not {type(self.amount).__name__}")
        if self.amount <= 0:
            raise ValueError("a gift's amount must be positive")
        object.__setattr__(self, "marketplace", get_marketplace(self.marketplace).code)
        if not one_line(self.sender_name):
            raise ValueError("a gift text needs the sender's name")
        # Raises CodeMistyped (which never repeats the input) for anything not a code.
        object.__setattr__(self, "code", code_text.display(code_text.normalize(self.code)))


@dataclass(frozen=True, slots=True)
class ExpiryReminderText:
    """Tells a text gift's recipient that the card, still unused, expires soon. It names the
    card by the last four characters of its code; the code itself is never sent again."""

    kind: ClassVar[str] = "expiry_reminder"

    sender_name: str
    amount: int
    marketplace: str
    last4: str
    valid_until: dt.date
    terms_url: str | None = None
    locale: str | None = None

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError(f"amount must be an int count of minor units, not {type(self.amount).__name__}")
        object.__setattr__(self, "marketplace", get_marketplace(self.marketplace).code)
        if not one_line(self.sender_name):
            raise ValueError("a reminder text needs the sender's name")


@dataclass(frozen=True, slots=True)
class RenderedText:
    """A rendered text and what it costs. ``body`` holds the claim code: never in repr."""

    body: str = field(repr=False)
    kind: str
    language: str
    encoding: Encoding
    units: int
    segments: int
    shortened: bool
    """True when the sender's name was shortened to keep the text in fewer segments."""


def render_text(ctx: GiftText | ExpiryReminderText, *, max_segments: int | None = None) -> RenderedText:
    """Render ``ctx`` in its reader's language; refuse it if it needs over ``max_segments``.

    ``max_segments`` defaults to ``GIFTQ_SMS_MAX_SEGMENTS``.
    """
    settings = get_settings()
    limit = settings.sms_max_segments if max_segments is None else max_segments
    locale = reader_locale(ctx.locale, ctx.marketplace)
    language = template_language(settings.templates_dir, ctx.kind, str(locale.language))
    template = _environment(settings.templates_dir).get_template(f"sms/{ctx.kind}/{language}.txt")
    fixed = {
        "amount": fold_if_gsm7(to_gsm7(format_money(ctx.amount, ctx.marketplace, locale))),
        "brand": fold_if_gsm7(brand_name(settings.email_from)),
        "code": ctx.code if isinstance(ctx, GiftText) else "",
        "last4": ctx.last4 if isinstance(ctx, ExpiryReminderText) else "",
        "url": redeem_url(settings.public_base_url, ctx.marketplace),
        "valid_until": (
            fold_if_gsm7(to_gsm7(format_date(ctx.valid_until, "medium", locale))) if ctx.valid_until else ""
        ),
        "terms": ctx.terms_url or terms_url(ctx.marketplace),
    }
    name = fold_if_gsm7(one_line(ctx.sender_name))

    def render(sender: str) -> str:
        return template.render(fixed, sender=sender).strip()

    body, shortened = _fit(render, name)
    count = count_segments(body)
    if count.segments > limit:
        raise TooManySegments(count.segments, limit, count.encoding.value, count.units)
    return RenderedText(body, ctx.kind, language, count.encoding, count.units, count.segments, shortened)


def _fit(render: Callable[[str], str], name: str) -> tuple[str, bool]:
    """The body with the longest form of ``name`` that keeps the fewest segments possible."""
    body = render(name)
    full = count_segments(body).segments
    if full == 1 or len(name) <= MIN_NAME_CHARS:
        return body, False
    fewest = count_segments(render(shorten(name, MIN_NAME_CHARS))).segments
    if fewest >= full:
        return body, False  # the name is not what makes the text long
    # Segments grow with the kept length: find the longest that still gives ``fewest``.
    low, high = MIN_NAME_CHARS, len(name) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if count_segments(render(shorten(name, middle))).segments <= fewest:
            low = middle
        else:
            high = middle - 1
    return render(shorten(name, low)), True


def shorten(name: str, keep: int) -> str:
    """The first ``keep`` characters of ``name`` and an ellipsis (``...`` in GSM-7, else ``…``)."""
    head = name[:keep].rstrip(" -.,")
    return head + ("..." if is_gsm7(head) else "…")


def reader_locale(locale: str | None, marketplace: str) -> Locale:
    """The reader's Babel locale, by default the marketplace's; ``de-AT`` and ``de_AT`` alike."""
    tag = locale or get_marketplace(marketplace).locale
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValueError(f"unknown locale {tag!r} (expected a tag like en, de-DE or fr-CA)") from None


def template_language(templates_dir: Path, kind: str, language: str) -> str:
    """``language`` when ``sms/<kind>/<language>.txt`` exists, else English."""
    return language if language in languages(templates_dir, kind) else SOURCE_LANGUAGE


@lru_cache(maxsize=16)
def languages(templates_dir: Path, kind: str) -> frozenset[str]:
    """The languages that ``kind`` has a template in (read once per process)."""
    folder = templates_dir / "sms" / kind
    found = frozenset(path.stem for path in folder.glob("*.txt"))
    if SOURCE_LANGUAGE not in found:
        raise FileNotFoundError(f"no {SOURCE_LANGUAGE}.txt template for the {kind!r} text in {folder}")
    return found


@lru_cache(maxsize=4)
def _environment(templates_dir: Path) -> Environment:
    # Plain text for a phone: nothing to escape; templates compile once per process.
    return Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=False,  # noqa: S701 - plain text, never HTML
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        auto_reload=False,
    )
