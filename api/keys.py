"""API keys: made, listed and revoked by ops (``giftq api-keys``), checked on each request.

A key reads ``gq_<key_id>_<secret>``: ``key_id`` (12 hex digits) is public and finds the
row; ``secret`` is 32 random bytes (43 characters of base64url) of which only the
SHA-256 is stored. The whole token is shown once, when it is made. SHA-256 without a
salt or stretching is enough here: the secret is 256 random bits, not a password, so
no table of guesses can cover it.

Scopes say what a key may do: ``orders`` (place and read orders), ``redeem`` (redeem
codes; read balances and history), ``checkout`` (apply balance, capture, release,
refund; read balances and history), ``ops`` (cancel, replay, resend, reissue).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.models import ApiKey
from giftq.db import utcnow

SCOPES: tuple[str, ...] = ("orders", "redeem", "checkout", "ops")
PREFIX = "gq_"
TOKEN = re.compile(r"^gq_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
KEY_ID = re.compile(r"^[0-9a-f]{12}$")


class InvalidKeyRequest(ApiError, ValueError):
    """A key cannot be made or revoked as asked (unknown scope, empty name, no such key)."""


@dataclass(frozen=True, slots=True)
class KeyView:
    """What may be shown about a key: never its secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyView:
        return cls(row.key_id, row.name, tuple(row.scopes.split()), row.created_at, row.revoked_at)


@dataclass(frozen=True, slots=True)
class NewKey:
    view: KeyView
    token: str
    """The whole key: shown once, then only its digest exists."""

    def __repr__(self) -> str:
        return f"NewKey({self.view.key_id}, token=gq_{self.view.key_id}_…)"


@dataclass(frozen=True, slots=True)
class Caller:
    """The key a request was made with (the secret is long gone)."""

    id: int
    key_id: str
    scopes: frozenset[str]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise InvalidKeyRequest(f"unknown scope {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not chosen:
        raise InvalidKeyRequest(f"give a key at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in chosen)


def create_key(session: Session, *, name: str, scopes: Iterable[str]) -> NewKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidKeyRequest("name the key (1 to 100 characters): who uses it")
    chosen = check_scopes(scopes)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        key_id=key_id,
        secret_sha256=digest(secret),
        name=name,
        scopes=" ".join(chosen),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return NewKey(KeyView.of(row), f"{PREFIX}{key_id}_{secret}")


def list_keys(session: Session) -> list[KeyView]:
    return [KeyView.of(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(session: Session, key_id: str) -> KeyView:
    """Stop the key working at once (its next request is refused); revoking twice is harmless."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id.strip().lower())).one_or_none()
    if row is None:
        raise InvalidKeyRequest(f"no API key {key_id!r} (giftq api-keys list shows them)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return KeyView.of(row)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a presented key was refused, for the log (never the key itself)."""

    reason: str
    key_id: str | None


def authenticate(session: Session, token: str | None) -> Caller | Refusal:
    """The caller behind ``token``, or why it is refused (missing, malformed, unknown, wrong, revoked)."""
    if not token:
        return Refusal("missing", None)
    match = TOKEN.match(token)
    if match is None:
        return Refusal("malformed", None)
    key_id = match["key_id"]
    row = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).one_or_none()
    if row is None:
        return Refusal("unknown", key_id)
    if not hmac.compare_digest(row.secret_sha256, digest(match["secret"])):
        return Refusal("wrong secret", key_id)
    if row.revoked_at is not None:
        return Refusal("revoked", key_id)
    return Caller(row.id, row.key_id, frozenset(row.scopes.split()))
