"""The hand-over link: how a storefront sends its signed-in customer to the redeem page.

    <public_base_url>/<marketplace>/redeem?account=<account>&expires=<unix seconds>&signature=<hex>

``signature`` is the lower-case hex HMAC-SHA256, keyed with the UTF-8 bytes of
``GIFTQ_HANDOVER_SECRET``, of the UTF-8 text of four lines joined by ``\\n`` (no final
newline)::

    giftq-handover-v1
    <MARKETPLACE in capitals>
    <expires, decimal>
    <account, exactly as the ledger knows it>

The account comes last, so no character in it can shift the other fields. The link is
accepted until ``expires`` and only if ``expires`` is at most
``GIFTQ_HANDOVER_MAX_SECONDS`` ahead: storefronts make it when the customer clicks.
It holds no claim code; the page turns it into a session cookie and drops it from the
address bar at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from api.errors import HandoverInvalid
from giftq.settings import SettingsError, get_settings
from ledger.marketplaces import get_marketplace

VERSION = "giftq-handover-v1"
MIN_SECRET_BYTES = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class Handover:
    account: str
    marketplace: str
    expires: int


def secret() -> bytes | None:
    """The shared key, or None when hand-overs are not configured."""
    value = get_settings().handover_secret
    if value is None:
        return None
    raw = value.get_secret_value().encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise SettingsError(f"GIFTQ_HANDOVER_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return raw


def message(marketplace: str, account: str, expires: int) -> bytes:
    return f"{VERSION}\n{marketplace.upper()}\n{expires}\n{account}".encode()


def sign(key: bytes, marketplace: str, account: str, expires: int) -> str:
    return hmac.new(key, message(marketplace, account, expires), hashlib.sha256).hexdigest()


def link(base_url: str, key: bytes, marketplace: str, account: str, expires: int) -> str:
    """What a storefront builds (in Python; the README shows the same in other words)."""
    query = urlencode(
        {"account": account, "expires": expires, "signature": sign(key, marketplace, account, expires)}
    )
    return f"{base_url.rstrip('/')}/{marketplace.lower()}/redeem?{query}"


def verify(
    marketplace: str, account: str | None, expires: str | None, signature: str | None, *, now: float
) -> Handover:
    key = secret()
    if key is None:
        raise HandoverInvalid("hand-over links are not configured (GIFTQ_HANDOVER_SECRET)")
    if not account or not expires or not signature:
        raise HandoverInvalid("the link lacks account, expires or signature")
    if len(account) > 200 or _CONTROL.search(account) or not account.strip():
        raise HandoverInvalid("the link's account is not one the ledger can hold")
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        raise HandoverInvalid("the link's expires is not a number of seconds")
    if not _HEX.match(signature):
        raise HandoverInvalid("the link's signature is not 64 hex digits")
    market = get_marketplace(marketplace).code
    until = int(expires)
    expected = sign(key, market, account, until)
    if not hmac.compare_digest(expected, signature.lower()):
        raise HandoverInvalid("the link's signature does not match")
    if until <= now:
        raise HandoverInvalid("the link has expired")
    if until > now + get_settings().handover_max_seconds:
        raise HandoverInvalid("the link expires too far ahead")
    return Handover(account, market, until)
