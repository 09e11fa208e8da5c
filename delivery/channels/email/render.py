"""Rendering: an email context in, subject + plain text + HTML out.

Templates live in ``<templates_dir>/email/<kind>/{subject.txt,body.txt,body.html}``.
One Jinja2 environment per templates directory and language is built once per process and kept
warm: templates compile on first use and are never re-read (``auto_reload=False``),
so a deploy that changes a template restarts the workers anyway.

- ``.html`` is autoescaped; ``.txt`` (and so the subject) is not, because it is not HTML.
- Undefined variables raise (``StrictUndefined``) instead of rendering as blanks.
- Text goes through ``gettext``/``ngettext`` (``jinja2.ext.i18n``, new style, so
  ``_("Hello %(name)s", name=x)`` escapes ``x`` in HTML), bound to the catalog of the
  reader's language: one environment per language, each compiling the templates once.
- ``|money(marketplace)`` formats minor units with Babel in the reader's locale.
- Every email is written for its reader (:func:`delivery.channels.email.i18n.localization`):
  the context's ``locale``, else its marketplace's.
- People's text goes through :mod:`giftq.text`: names and subjects on one line without
  control or bidi characters, personal messages as clean paragraphs. In the plain-text
  part, a word longer than a line is broken (a link is not); the HTML lets long words
  wrap, and shows the claim code as groups that never break inside.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup

from delivery import designs, notice_policy
from delivery.channels.email.contexts import (
    DeliveryFailedEmail,
    EmailContext,
    ExpiryReminderEmail,
    GiftDeliveredEmail,
    GiftEmail,
    GiftShippedEmail,
    OrderCancelledEmail,
    OrderConfirmationEmail,
    PrintableGiftEmail,
)
from delivery.channels.email.i18n import Localization, format_money, localization, translations
from giftq.settings import Settings, get_settings
from giftq.text import clean_paragraphs, one_line
from ledger.expiry_policy import terms_url
from ledger.marketplaces import get_marketplace

TEXT_WIDTH = 72

# A word that is a link: never broken in the plain-text part, or it stops working.
_LINK = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A rendered email. ``text`` and ``html`` may hold a claim code: never in repr."""

    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)
    kind: str = ""
    language: str = "en"
    auto_submitted: bool = False
    """True for notices to the purchaser (``Auto-Submitted: auto-generated``)."""
    message_id: str | None = None
    """The context's Message-ID, if it has one (stable across attempts at one delivery)."""


def render_email(ctx: EmailContext) -> RenderedEmail:
    """Render the subject, plain-text and HTML bodies of ``ctx`` in its reader's language."""
    settings = get_settings()
    l10n = localization(ctx.marketplace, ctx.locale)
    env = _environment(settings.templates_dir, l10n.language)
    variables = _variables(ctx, l10n, settings)
    base = f"email/{ctx.kind}/"
    subject = one_line(env.get_template(base + "subject.txt").render(variables))
    variables["subject"] = subject
    text = env.get_template(base + "body.txt").render(variables)
    html = env.get_template(base + "body.html").render(variables)
    return RenderedEmail(
        subject=subject,
        text=text,
        html=html,
        kind=ctx.kind,
        language=l10n.language,
        auto_submitted=ctx.auto_submitted,
        message_id=ctx.message_id,
    )


def replies_welcome(settings: Settings | None = None) -> bool:
    """True when a reply reaches someone: ``GIFTQ_EMAIL_REPLY_TO`` is set.

    The message then carries it as ``Reply-To`` and the notices invite a reply; without
    it they point to the store instead, since the sender address may be read by nobody.
    """
    return bool((settings or get_settings()).email_reply_to.strip())


@lru_cache(maxsize=8)
def brand_name(email_from: str) -> str:
    """The name people know us by: the display name of ``email_from``."""
    return one_line(parseaddr(email_from)[0]) or "giftq"


def redeem_url(public_base_url: str, marketplace: str) -> str:
    # The code never goes into the URL: URLs end up in proxy and browser logs.
    return f"{public_base_url.rstrip('/')}/{marketplace.lower()}/redeem"


def code_groups(code: str) -> Markup:
    """The claim code for HTML: each group (with its dash) in a span that never breaks.

    A line break can only fall between groups, and only where a screen is too narrow for
    the whole code; the text a reader copies is the code, dashes and all, unchanged.
    """
    groups = code.split("-")
    spans = [
        Markup('<span style="white-space:nowrap;">{}</span>').format(
            group + ("-" if i < len(groups) - 1 else "")
        )
        for i, group in enumerate(groups)
    ]
    return Markup("<wbr>").join(spans)


def _variables(ctx: EmailContext, l10n: Localization, settings: Settings) -> dict[str, Any]:
    public_base_url = settings.public_base_url
    variables: dict[str, Any] = {
        "ctx": ctx,
        "l10n": l10n,
        "lang": l10n.language,
        "brand": brand_name(settings.email_from),
        "to_name": one_line(ctx.to_name),
        "store_url": public_base_url.rstrip("/"),
        "replies_welcome": replies_welcome(settings),
    }
    if not isinstance(ctx, OrderConfirmationEmail | OrderCancelledEmail):
        # Formatted once here rather than in each of the three templates.
        variables["amount"] = l10n.money(ctx.amount)
    if isinstance(ctx, GiftEmail):
        variables.update(
            sender=one_line(ctx.sender_name),
            recipient=one_line(ctx.recipient_name),
            personal_message=clean_paragraphs(ctx.message) if ctx.message else "",
            redeem_url=redeem_url(public_base_url, ctx.marketplace),
            accent=designs.design(ctx.design)["accent"],
            code_html=code_groups(one_line(ctx.code)),
            **_disclosure(ctx, l10n),
        )
    elif isinstance(ctx, OrderConfirmationEmail):
        variables.update(
            purchaser=one_line(ctx.purchaser_name),
            lines=[
                {
                    "recipient": one_line(line.recipient_name),
                    "channel": line.channel,
                    "amount": l10n.money(line.amount, line.marketplace),
                    "masked_code": one_line(line.masked_code) if line.masked_code else "",
                    "send_at": _send_at(l10n, line.send_at, line.send_zone),
                }
                for line in ctx.lines
            ],
            totals=_totals(ctx, l10n),
            ordered_on=l10n.date(ctx.ordered_at) if ctx.ordered_at else "",
            # Promise only the "sent" notices that will come (GIFTQ_NOTICES).
            notices_each_gift=notice_policy.receipt_promises_notices(
                ((line.channel, line.send_at is not None) for line in ctx.lines), settings
            ),
        )
    elif isinstance(ctx, OrderCancelledEmail):
        variables.update(
            purchaser=one_line(ctx.purchaser_name),
            lines=[
                {
                    "recipient": one_line(line.recipient_name),
                    "amount": l10n.money(line.amount, line.marketplace),
                }
                for line in ctx.lines
            ],
            reason=str(ctx.reason),
            deadline_hours=ctx.deadline_hours,
        )
    elif isinstance(ctx, GiftDeliveredEmail | DeliveryFailedEmail | GiftShippedEmail):
        variables.update(
            purchaser=one_line(ctx.purchaser_name),
            recipient=one_line(ctx.recipient_name),
            order_ref=one_line(ctx.order_ref) if ctx.order_ref else "",
            # Where the gift went; a physical card has no address line here: its name.
            address=one_line(getattr(ctx, "address", None) or "") or one_line(ctx.recipient_name),
        )
        if isinstance(ctx, DeliveryFailedEmail):
            variables["reason"] = str(ctx.reason) if ctx.reason else ""
            variables["attempts"] = ctx.attempts
        if isinstance(ctx, GiftShippedEmail):
            variables.update(
                carrier=one_line(ctx.carrier),
                tracking_number=one_line(ctx.tracking_number),
                tracking_url=one_line(ctx.tracking_url) if ctx.tracking_url else "",
            )
    elif isinstance(ctx, ExpiryReminderEmail):
        variables.update(
            sender=one_line(ctx.sender_name),
            recipient=one_line(ctx.recipient_name),
            last4=one_line(ctx.last4),
            redeem_url=redeem_url(public_base_url, ctx.marketplace),
            **_disclosure(ctx, l10n),
        )
    elif isinstance(ctx, PrintableGiftEmail):
        variables.update(
            purchaser=one_line(ctx.purchaser_name),
            recipient=one_line(ctx.recipient_name),
            order_ref=one_line(ctx.order_ref) if ctx.order_ref else "",
            download_url=ctx.download_url,
            # The purchaser's time zone is not known: the exact instant, in UTC, said so.
            link_expires=l10n.date_time(ctx.link_expires_at.astimezone(UTC).replace(tzinfo=None)),
            link_max_uses=ctx.link_max_uses,
        )
    return variables


def _disclosure(ctx: GiftEmail | ExpiryReminderEmail, l10n: Localization) -> dict[str, str]:
    """The card's validity in the reader's terms ("" when it does not expire), and its terms."""
    when = ctx.valid_until
    return {
        "valid_until": l10n.date(datetime.combine(when, time())) if when else "",
        "terms_url": ctx.terms_url or terms_url(ctx.marketplace),
    }


def _send_at(l10n: Localization, local: datetime | None, zone: str | None) -> str:
    """A scheduled send time in the reader's terms, with the zone it is local to."""
    if local is None:
        return ""
    written = l10n.date_time(local)
    return f"{written} ({one_line(zone)})" if zone else written


def _totals(ctx: OrderConfirmationEmail, l10n: Localization) -> list[dict[str, str]]:
    """One total per currency, in the order the currencies first appear."""
    sums: dict[str, tuple[int, str]] = {}
    for line in ctx.lines:
        currency = get_marketplace(line.marketplace).currency
        total, marketplace = sums.get(currency, (0, line.marketplace))
        sums[currency] = (total + line.amount, marketplace)
    return [
        {"currency": currency, "amount": format_money(total, marketplace, l10n.locale)}
        for currency, (total, marketplace) in sums.items()
    ]


# --- the environment -------------------------------------------------------------------


def _l10n(context: Context) -> Localization:
    value = context.get("l10n")
    if not isinstance(value, Localization):
        raise RuntimeError("email templates render with an 'l10n' variable (use render_email)")
    return value


@pass_context
def _money_filter(context: Context, amount: int, marketplace: str | None = None) -> str:
    return _l10n(context).money(amount, marketplace)


def _paragraph_filter(
    value: str, indent: str = "", first: str | None = None, break_words: bool = False
) -> str:
    """Wrap plain text at 72 columns; never inside a word, a URL or a dashed claim code.

    ``indent`` starts every line, ``first`` (default: ``indent``) the first one, so that
    ``|paragraph("   ", "1. ")`` makes a numbered list item with a hanging indent.
    Existing line breaks are kept. ``break_words=True`` (what people typed) breaks a word
    longer than a line into line-long pieces, except a link.
    """
    wrapped = []
    room = TEXT_WIDTH - max(len(indent), len(first or ""))
    for number, line in enumerate(str(value).split("\n")):
        lead = first if number == 0 and first is not None else indent
        if not line.strip():
            wrapped.append(indent.rstrip())
            continue
        wrapped.append(
            textwrap.fill(
                _break_long_words(line, room) if break_words else line,
                width=TEXT_WIDTH,
                initial_indent=lead,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(wrapped)


def _break_long_words(line: str, room: int) -> str:
    """``line`` with each word longer than ``room`` cut into ``room``-long pieces.

    The pieces are joined with spaces: each fills a line of its own, so those spaces
    become the line breaks when the line is wrapped at ``room``.
    """
    words = line.split(" ")
    for i, word in enumerate(words):
        if len(word) > room and not _LINK.match(word):
            words[i] = " ".join(word[j : j + room] for j in range(0, len(word), room))
    return " ".join(words)


@lru_cache(maxsize=16)
def _environment(templates_dir: Path, language: str) -> Environment:
    """The environment of one language: its catalog is bound to the templates' ``_()``.

    One per language rather than one whose ``_()`` looks the catalog up in each render's
    variables: a gift email calls ``_()`` some 25 times, and Jinja's call into a
    context-taking function cost about as much as the rest of the render. Each language
    compiles the templates once.
    """
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(
            enabled_extensions=("html",),
            disabled_extensions=("txt",),
            default_for_string=False,
            default=False,
        ),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    catalog = translations(language)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=catalog.gettext, ngettext=catalog.ngettext, newstyle=True
    )
    env.filters["money"] = _money_filter
    env.filters["paragraph"] = _paragraph_filter
    return env
