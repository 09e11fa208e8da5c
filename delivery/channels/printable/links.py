"""Signed download links for a printable card, with an expiry and a download count.

An HTTP handler gives the purchaser ``make_link(session, delivery_id, now)`` and, when
the link is followed, calls ``redeem_link(session, token, now)`` for the delivery whose
PDF it renders; the caller owns the transaction, as everywhere in giftq.

The token is ``<payload>.<mac>`` in URL-safe base64: the payload is the link's id, the
delivery's id and the expiry (Unix seconds), the MAC an HMAC-SHA256 over it under a key
derived from the installation's pepper (HKDF-SHA256 with a label of its own, so the key
is used for nothing else). It carries no claim code and no secret: it only proves that we
made it. Order of the checks, each with its own error:

1. the MAC (:class:`LinkBadSignature`: malformed, altered, or made under another key);
2. the expiry in the signed payload (:class:`LinkExpired`), before any database work;
3. one conditional ``UPDATE ... SET uses = uses + 1 WHERE uses < max_uses AND
   expires_at > now``: the count is raised by the database, so of two downloads racing
   for the last use exactly one gets the row (PostgreSQL re-checks the condition after
   the first commits; SQLite's ``BEGIN IMMEDIATE`` runs them one after the other);
4. when no row was updated, why: :class:`LinkUnknown` (no such row, or not the one
   signed), :class:`LinkExpired`, or :class:`LinkUsedUp`.

``expires_at`` and ``max_uses`` are fixed in the row when the link is made
(``GIFTQ_PRINTABLE_LINK_TTL_SECONDS``, ``GIFTQ_PRINTABLE_LINK_MAX_USES``), so changing a
setting changes new links only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import struct
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from delivery.channels.printable.errors import (
    LinkBadSignature,
    LinkExpired,
    LinkUnknown,
    LinkUsedUp,
)
from delivery.channels.printable.models import PrintableLink
from giftq.settings import get_settings

DOWNLOAD_PATH = "/printables/"
"""Links are ``<public_base_url>/printables/<token>``."""

_KEY_LABEL = b"giftq printable download link v1"
_PAYLOAD = struct.Struct(">BQQq")  # version, link id, delivery id, expiry (Unix seconds)
_VERSION = 1
_MAC_BYTES = 32
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def make_link(session: Session, delivery_id: int, now: dt.datetime) -> str:
    """A new download link for the delivery's PDF (the row is flushed, not committed)."""
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}{DOWNLOAD_PATH}{make_token(session, delivery_id, now)}"


def make_token(session: Session, delivery_id: int, now: dt.datetime) -> str:
    """The token of a new link (what :func:`make_link` puts at the end of its URL)."""
    _check_instant(now)
    if type(delivery_id) is not int or delivery_id <= 0:
        raise ValueError("delivery_id must be a positive int")
    settings = get_settings()
    # Whole seconds: the expiry in the signed payload and in the row are then equal.
    expires_at = now.astimezone(dt.UTC).replace(microsecond=0) + dt.timedelta(
        seconds=settings.printable_link_ttl_seconds
    )
    link = PrintableLink(
        delivery_id=delivery_id,
        expires_at=expires_at,
        max_uses=settings.printable_link_max_uses,
        uses=0,
        created_at=now,
    )
    session.add(link)
    session.flush()
    return _sign(link.id, delivery_id, int(expires_at.timestamp()))


def redeem_link(session: Session, token: str, now: dt.datetime) -> int:
    """Count one download of the link and return its delivery's id, or raise why not."""
    _check_instant(now)
    link_id, delivery_id, expires = _verify(token)
    if now.timestamp() >= expires:
        raise LinkExpired("this download link has expired")
    counted = session.execute(
        update(PrintableLink)
        .where(
            PrintableLink.id == link_id,
            PrintableLink.delivery_id == delivery_id,
            PrintableLink.uses < PrintableLink.max_uses,
            PrintableLink.expires_at > now,
        )
        .values(uses=PrintableLink.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount == 1:  # type: ignore[attr-defined]
        return delivery_id
    link = session.scalars(
        select(PrintableLink).where(PrintableLink.id == link_id).execution_options(populate_existing=True)
    ).one_or_none()
    if link is None or link.delivery_id != delivery_id or int(link.expires_at.timestamp()) != expires:
        raise LinkUnknown("no such download link")
    if link.expires_at <= now:
        raise LinkExpired("this download link has expired")
    raise LinkUsedUp(f"this download link was used {link.max_uses} time(s), as many as it allows")


def _check_instant(now: dt.datetime) -> None:
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")


@lru_cache(maxsize=4)
def _key(pepper: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_LABEL).derive(pepper)


def _mac(payload: bytes) -> bytes:
    return hmac.new(_key(get_settings().pepper()), payload, hashlib.sha256).digest()


def _sign(link_id: int, delivery_id: int, expires: int) -> str:
    payload = _PAYLOAD.pack(_VERSION, link_id, delivery_id, expires)
    return f"{_b64(payload)}.{_b64(_mac(payload))}"


def _verify(token: str) -> tuple[int, int, int]:
    if not isinstance(token, str) or len(token) > 200:
        raise LinkBadSignature("malformed download link")
    encoded_payload, dot, encoded_mac = token.partition(".")
    try:
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise LinkBadSignature("malformed download link") from None
    if not dot or len(payload) != _PAYLOAD.size or len(mac) != _MAC_BYTES:
        raise LinkBadSignature("malformed download link")
    if not hmac.compare_digest(mac, _mac(payload)):
        raise LinkBadSignature("the download link's signature does not match")
    version, link_id, delivery_id, expires = _PAYLOAD.unpack(payload)
    if version != _VERSION:
        raise LinkBadSignature("unknown download link version")
    return link_id, delivery_id, expires


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # Only the form _b64 writes: the URL-safe alphabet, no padding.
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64")
    # validate=True: a character outside the alphabet is an error, not silently skipped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
