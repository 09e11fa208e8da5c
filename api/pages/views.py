"""The recipient's pages: ``/<marketplace>/redeem`` and ``/<marketplace>/balance``.

Server-rendered (Jinja2, ``templates/pages``), no front-end build. Forms post with a CSRF
token; the claim code travels only in a POST body and is never written back into a page
(the browser keeps what was typed, see ``static/pages.js``), a URL or a log line. Every
answer carries a Content-Security-Policy that allows only this site's own script and
style sheet.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from typing import Annotated, Any

from babel import Locale
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.clients import lockout_client
from api.errors import HandoverInvalid
from api.pages import cardcheck, handover, signin
from api.pages.i18n import PageText, page_text
from giftq.db import session_factory
from giftq.settings import get_settings
from ledger import balance, redeem_code
from ledger.errors import (
    AlreadyRedeemed,
    CardExpired,
    CardNotActive,
    CardVoided,
    CodeMistyped,
    CodeNotValid,
    IdempotencyConflict,
    RedemptionRefused,
    TooManyAttempts,
    UnknownMarketplace,
    WrongMarketplace,
)
from ledger.expiry_policy import ExpiryRule, rule_for
from ledger.marketplaces import MARKETPLACES, get_marketplace
from ledger.models import CardOrigin

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
FormText = Annotated[str, Form(max_length=200)]


def _html(text: PageText | None, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    text = text or page_text("US")
    body = text.env.get_template(template).render(
        lang=text.language,
        mp=text.marketplace.code.lower(),
        store=store_name(text, text.marketplace.code),
        **context,
    )
    headers = dict(SECURITY_HEADERS)
    if context.get("retry_after"):
        headers["Retry-After"] = str(context["retry_after"])
    return HTMLResponse(body, status_code=status, headers=headers)


def _text(marketplace: str) -> PageText | None:
    if len(marketplace) != 2:
        return None
    try:
        return page_text(get_marketplace(marketplace).code)
    except UnknownMarketplace:
        return None


def _not_found() -> HTMLResponse:
    return _html(None, "not_found.html", 404, markets=sorted(m.lower() for m in MARKETPLACES))


def store_name(text: PageText, marketplace: str) -> str:
    """The marketplace's country in the page's language: "United Kingdom", "Vereinigtes Königreich"."""
    territory = Locale.parse(get_marketplace(marketplace).locale).territory
    return str(text.locale.territories.get(territory or "", marketplace))


def _client(request: Request) -> str:
    host = request.client.host if request.client else "unknown"
    try:
        return lockout_client(host)
    except ValueError:
        return host


def _signin_url(marketplace: str) -> str | None:
    template = get_settings().storefront_signin_url
    return template.replace("{marketplace}", marketplace.lower()) if template else None


def refusal_message(text: PageText, refusal: RedemptionRefused, card_marketplace: str | None) -> str:
    _ = text.gettext
    match refusal:
        case CodeMistyped():
            return _("This code doesn't look right. Check each character against your card and try again.")
        case CodeNotValid():
            return _("This is not a valid gift card code. Check that it is the code from your card or email.")
        case AlreadyRedeemed() if refusal.to_this_account:
            return _("This gift card is already added to your balance.")
        case AlreadyRedeemed():
            return _("This gift card was already redeemed on another account.")
        case WrongMarketplace():
            return other_store(text, card_marketplace)
        case CardNotActive():
            return _(
                "This gift card is not active yet. It becomes active when it ships: try again in a few days."
            )
        case CardVoided():
            return _("This gift card was cancelled and can no longer be used.")
        case CardExpired():
            return expired_message(text, refusal.expired_on)
        case TooManyAttempts():
            return _("Too many attempts. For your security, try again %(when)s.") % {
                "when": text.wait(refusal.retry_after)
            }
    return _("This is not a valid gift card code. Check that it is the code from your card or email.")


def other_store(text: PageText, card_marketplace: str | None) -> str:
    _ = text.gettext
    if card_marketplace is None:
        return _("This gift card is for another of our stores and cannot be used here.")
    return _("This gift card is for our %(store)s store and can only be used there.") % {
        "store": store_name(text, card_marketplace)
    }


# --- /<marketplace>/redeem ----------------------------------------------------------------


@router.get("/{marketplace}/redeem", response_class=HTMLResponse)
def redeem_page(
    request: Request,
    marketplace: str,
    account: str | None = None,
    expires: str | None = None,
    signature: str | None = None,
) -> Response:
    text = _text(marketplace)
    if text is None:
        return _not_found()
    market = text.marketplace.code
    if account is not None or expires is not None or signature is not None:
        try:
            taken = handover.verify(market, account, expires, signature, now=time.time())
        except HandoverInvalid as exc:
            log.info("redeem page: hand-over refused (%s)", exc)
            return _signed_out(request, text, link_refused=True, status=400)
        signin.sign_in(request.session, taken)
        # The signed link leaves the address bar (and the history); a #code= fragment stays.
        return RedirectResponse(f"/{market.lower()}/redeem", status_code=303)
    who = signin.signed_in(request.session, market)
    if who is None:
        return _signed_out(request, text)
    return _redeem_form(request, text, who.account)


def _signed_out(
    request: Request, text: PageText, *, link_refused: bool = False, status: int = 200
) -> HTMLResponse:
    return _html(
        text,
        "redeem.html",
        status,
        state="signed_out",
        link_refused=link_refused,
        signin_url=_signin_url(text.marketplace.code),
    )


def _redeem_form(
    request: Request,
    text: PageText,
    account: str,
    *,
    error: str | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> HTMLResponse:
    with session_factory()() as session:
        current = balance(session, account=account, marketplace=text.marketplace.code).amount
    return _html(
        text,
        "redeem.html",
        status,
        state="form",
        balance=text.money(current),
        error=error,
        csrf_token=signin.csrf_token(request.session),
        attempt=secrets.token_urlsafe(16),
        retry_after=retry_after,
    )


@router.post("/{marketplace}/redeem", response_class=HTMLResponse)
def redeem_submit(
    request: Request,
    marketplace: str,
    code: FormText = "",
    csrf_token: FormText = "",
    attempt: FormText = "",
) -> Response:
    text = _text(marketplace)
    if text is None:
        return _not_found()
    market = text.marketplace.code
    _ = text.gettext
    who = signin.signed_in(request.session, market)
    if who is None:
        return _signed_out(request, text, status=401)
    if not signin.csrf_ok(request.session, csrf_token):
        return _redeem_form(
            request, text, who.account, error=_("This form has expired. Enter the code again."), status=403
        )
    if not code.strip():
        return _redeem_form(
            request, text, who.account, error=_("Enter the code from your gift card."), status=422
        )
    key = attempt if 16 <= len(attempt) <= 64 and attempt.isascii() else secrets.token_urlsafe(16)
    try:
        result = redeem_code(
            session_factory(),
            code,
            account=who.account,
            marketplace=market,
            idempotency_key=f"page:{key}",
            client=_client(request),
        )
    except RedemptionRefused as refusal:
        where = refusal.card_marketplace if isinstance(refusal, WrongMarketplace) else None
        retry_after = refusal.retry_after if isinstance(refusal, TooManyAttempts) else None
        return _redeem_form(
            request,
            text,
            who.account,
            error=refusal_message(text, refusal, where),
            status=429 if retry_after else 422,
            retry_after=retry_after,
        )
    except IdempotencyConflict:
        return _redeem_form(
            request,
            text,
            who.account,
            error=_("This form was already used. Enter the code again."),
            status=409,
        )
    return _html(
        text,
        "redeem.html",
        state="done",
        added=text.money(result.amount),
        balance=text.money(result.balance_after),
    )


# --- /<marketplace>/balance ---------------------------------------------------------------


@router.get("/{marketplace}/terms", response_class=HTMLResponse)
def terms_page(marketplace: str) -> Response:
    """The marketplace's card terms as data says them (``GIFTQ_TERMS_URL``'s default target)."""
    text = _text(marketplace)
    if text is None:
        return _not_found()
    code = text.marketplace.code
    rules = [
        validity(text, rule_for(code, origin), promotional=origin == CardOrigin.PROMOTIONAL)
        for origin in CardOrigin
    ]
    return _html(text, "terms.html", rules=rules)


def validity(text: PageText, rule: ExpiryRule, *, promotional: bool) -> str:
    """One origin's rule in words."""
    _ = text.gettext
    if rule.months is None:
        return (
            _("Promotional gift cards from this store do not expire.")
            if promotional
            else _("Gift cards bought in this store do not expire.")
        )
    if rule.to_year_end:
        sentence = _(
            "Gift cards bought in this store are valid for %(months)s months after they are issued, "
            "to the end of that year."
        )
    elif promotional:
        sentence = _(
            "Promotional gift cards from this store are valid for %(months)s months after they are issued."
        )
    else:
        sentence = _("Gift cards bought in this store are valid for %(months)s months after they are issued.")
    return sentence % {"months": rule.months}


@router.get("/{marketplace}/balance", response_class=HTMLResponse)
def balance_page(request: Request, marketplace: str) -> Response:
    text = _text(marketplace)
    if text is None:
        return _not_found()
    return _balance_form(request, text)


def _balance_form(
    request: Request,
    text: PageText,
    *,
    error: str | None = None,
    result: str | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> HTMLResponse:
    return _html(
        text,
        "balance.html",
        status,
        error=error,
        result=result,
        csrf_token=signin.csrf_token(request.session),
        retry_after=retry_after,
    )


@router.post("/{marketplace}/balance", response_class=HTMLResponse)
def balance_submit(
    request: Request, marketplace: str, code: FormText = "", csrf_token: FormText = ""
) -> Response:
    text = _text(marketplace)
    if text is None:
        return _not_found()
    _ = text.gettext
    if not signin.csrf_ok(request.session, csrf_token):
        return _balance_form(
            request, text, error=_("This form has expired. Enter the code again."), status=403
        )
    if not code.strip():
        return _balance_form(request, text, error=_("Enter the code from your gift card."), status=422)
    try:
        found = cardcheck.check_card_code(
            session_factory(), code, marketplace=text.marketplace.code, client=_client(request)
        )
    except RedemptionRefused as refusal:
        retry_after = refusal.retry_after if isinstance(refusal, TooManyAttempts) else None
        return _balance_form(
            request,
            text,
            error=refusal_message(text, refusal, None),
            status=429 if retry_after else 422,
            retry_after=retry_after,
        )
    return _balance_form(request, text, result=card_message(text, found))


def card_message(text: PageText, found: cardcheck.CardCheck) -> str:
    _ = text.gettext
    if found.status == "active" and found.amount is not None:
        return _("This gift card holds %(amount)s and has not been redeemed yet.") % {
            "amount": text.money(found.amount)
        }
    if found.status == "redeemed":
        return _("This gift card has already been redeemed.")
    if found.status == "other_marketplace":
        return other_store(text, found.card_marketplace)
    if found.status == "not_active":
        return _(
            "This gift card is not active yet. It becomes active when it ships: try again in a few days."
        )
    if found.status == "expired" and found.expired_on is not None:
        return expired_message(text, found.expired_on)
    return _("This gift card was cancelled and can no longer be used.")


def expired_message(text: PageText, expired_on: dt.date) -> str:
    return text.gettext("This gift card expired on %(date)s and can no longer be used.") % {
        "date": text.date(expired_on)
    }
