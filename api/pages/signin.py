"""Who is signed in on the redeem page, and the form tokens that guard every post.

The session is a cookie signed by Starlette's ``SessionMiddleware`` (itsdangerous) with a
key derived from the code pepper, so no other secret has to be kept. It holds the
handed-over account, its marketplace and until when (``GIFTQ_PAGE_SESSION_SECONDS``),
and a random CSRF token that each form carries back (``csrf_token``) and that every
post must match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from api.pages.handover import Handover
from giftq.settings import get_settings

COOKIE = "giftq_session"


def cookie_key() -> str:
    """The session cookie's signing key: the pepper, through HMAC with a label of its own."""
    return hmac.new(get_settings().pepper(), b"giftq pages session v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: str
    marketplace: str


def sign_in(session: dict[str, Any], handover: Handover, *, now: float | None = None) -> None:
    session.clear()
    session["account"] = handover.account
    session["marketplace"] = handover.marketplace
    session["until"] = int((now or time.time()) + get_settings().page_session_seconds)


def signed_in(session: dict[str, Any], marketplace: str, *, now: float | None = None) -> SignedIn | None:
    account, market, until = session.get("account"), session.get("marketplace"), session.get("until")
    if not isinstance(account, str) or market != marketplace or not isinstance(until, int):
        return None
    if until <= (now or time.time()):
        return None
    return SignedIn(account, market)


def csrf_token(session: dict[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: dict[str, Any], submitted: str) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and bool(submitted) and hmac.compare_digest(token, submitted)
