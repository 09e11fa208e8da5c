"""Rendering: an email context in, subject + plain text + HTML out.

Templates live in ``<templates_dir>/email/<kind>/{subject.txt,body.txt,body.html}``.
One Jinja2 environment per templates directory is built once per process and kept
warm: templates compile on first use and are never re-read (``auto_reload=False``),
so a deploy that changes a template restarts the workers anyway.

- ``.html`` is autoescaped; ``.txt`` (and so the subject) is not, because it is not HTML.
- Undefined variables raise (``StrictUndefined``) instead of rendering as blanks.
- Text goes through ``gettext``/``ngettext`` (``jinja2.ext.i18n``, new style, so
  ``_("Hello %(name)s", name=x)`` escapes ``x`` in HTML). The catalog is picked per
  render from the ``l10n`` template variable, so one environment serves every language.
- ``|money(marketplace)`` formats minor units with Babel in the email's locale.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
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

from delivery import designs
from delivery.channels.email.contexts import (
    DeliveryFailedEmail,
    EmailContext,
    GiftDeliveredEmail,
    GiftEmail,
    GiftShippedEmail,
    OrderConfirmationEmail,
)
from delivery.channels.email.i18n import Localization, format_money, localization
from giftq.settings import get_settings
from ledger.marketplaces import get_marketplace

TEXT_WIDTH = 72

# Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r" {2,}")


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


def one_line(value: str) -> str:
    """``value`` with every control character and line break turned into one space."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


def clean_paragraphs(value: str) -> str:
    """Free text (a personal message): newlines normalised, other control characters gone."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    value = _CONTROL_BUT_NEWLINE.sub("", value.replace("\u2029", "\n\n"))
    return "\n".join(line.rstrip() for line in value.strip().split("\n"))


def render_email(ctx: EmailContext) -> RenderedEmail:
    """Render the subject, plain-text and HTML bodies of ``ctx`` in its marketplace's language."""
    settings = get_settings()
    env = _environment(settings.templates_dir)
    l10n = localization(ctx.marketplace)
    variables = _variables(ctx, l10n, brand_name(settings.email_from), settings.public_base_url)
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
    )


@lru_cache(maxsize=8)
def brand_name(email_from: str) -> str:
    """The name people know us by: the display name of ``email_from``."""
    return one_line(parseaddr(email_from)[0]) or "giftq"


def redeem_url(public_base_url: str, marketplace: str) -> str:
    # The code never goes into the URL: URLs end up in proxy and browser logs.
    return f"{public_base_url.rstrip('/')}/{marketplace.lower()}/redeem"


def _variables(ctx: EmailContext, l10n: Localization, brand: str, public_base_url: str) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "ctx": ctx,
        "l10n": l10n,
        "lang": l10n.language,
        "brand": brand,
        "to_name": one_line(ctx.to_name),
    }
    if not isinstance(ctx, OrderConfirmationEmail):
        # Formatted once here rather than in each of the three templates.
        variables["amount"] = l10n.money(ctx.amount)
    if isinstance(ctx, GiftEmail):
        variables.update(
            sender=one_line(ctx.sender_name),
            recipient=one_line(ctx.recipient_name),
            personal_message=clean_paragraphs(ctx.message) if ctx.message else "",
            redeem_url=redeem_url(public_base_url, ctx.marketplace),
            store_url=public_base_url.rstrip("/"),
            accent=designs.design(ctx.design)["accent"],
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
                    "send_at": one_line(line.send_at) if line.send_at else "",
                }
                for line in ctx.lines
            ],
            totals=_totals(ctx, l10n),
            ordered_on=l10n.date(ctx.ordered_at) if ctx.ordered_at else "",
        )
    elif isinstance(ctx, GiftDeliveredEmail | DeliveryFailedEmail | GiftShippedEmail):
        variables.update(
            purchaser=one_line(ctx.purchaser_name),
            recipient=one_line(ctx.recipient_name),
            order_ref=one_line(ctx.order_ref) if ctx.order_ref else "",
        )
        if isinstance(ctx, DeliveryFailedEmail):
            variables["reason"] = one_line(ctx.reason)
        if isinstance(ctx, GiftShippedEmail):
            variables.update(
                carrier=one_line(ctx.carrier),
                tracking_number=one_line(ctx.tracking_number),
                tracking_url=one_line(ctx.tracking_url) if ctx.tracking_url else "",
            )
    return variables


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
def _gettext(context: Context, message: str) -> str:
    return _l10n(context).translations.gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return _l10n(context).translations.ngettext(singular, plural, n)


@pass_context
def _money_filter(context: Context, amount: int, marketplace: str | None = None) -> str:
    return _l10n(context).money(amount, marketplace)


def _paragraph_filter(value: str, indent: str = "", first: str | None = None) -> str:
    """Wrap plain text at 72 columns; never inside a word, a URL or a dashed claim code.

    ``indent`` starts every line, ``first`` (default: ``indent``) the first one, so that
    ``|paragraph("   ", "1. ")`` makes a numbered list item with a hanging indent.
    Existing line breaks are kept.
    """
    wrapped = []
    for number, line in enumerate(str(value).split("\n")):
        lead = first if number == 0 and first is not None else indent
        if not line.strip():
            wrapped.append(indent.rstrip())
            continue
        wrapped.append(
            textwrap.fill(
                line,
                width=TEXT_WIDTH,
                initial_indent=lead,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(wrapped)


@lru_cache(maxsize=4)
def _environment(templates_dir: Path) -> Environment:
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
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )
    env.filters["money"] = _money_filter
    env.filters["paragraph"] = _paragraph_filter
    return env
