"""Idempotency keys: every ledger write carries one, kept forever.

The same key with the same request returns the first result; with another
request (or another operation) it raises :class:`IdempotencyConflict`. Requests
are stored as a keyed digest (they may contain a claim code), results as JSON of
ids and amounts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from giftq.db import utcnow
from ledger.codes import get_vault
from ledger.errors import IdempotencyConflict, InvalidRequest
from ledger.models import IdempotencyRecord
from ledger.sqlutil import insert_ignore

MAX_KEY_LENGTH = 200


def _digest(operation: str, request: Mapping[str, Any]) -> str:
    canonical = json.dumps({"op": operation, "request": request}, sort_keys=True, separators=(",", ":"))
    return get_vault().fingerprint(canonical.encode())


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest("idempotency_key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters")
    return key


def lookup(session: Session, key: str, operation: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored result for this key, None if the key is new; a conflict if it differs."""
    _check_key(key)
    record = session.execute(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if record is None:
        return None
    if record.operation != operation or record.request_digest != _digest(operation, request):
        raise IdempotencyConflict(
            f"idempotency key {key!r} was used before for a different request ({record.operation})"
        )
    if record.result is None:
        raise IdempotencyConflict(f"idempotency key {key!r} is in use by a request still in progress")
    return dict(record.result)


def claim(session: Session, key: str, operation: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """Reserve the key for this request; or return the first result if it was seen before."""
    _check_key(key)
    inserted = insert_ignore(
        session,
        IdempotencyRecord,
        {
            "key": key,
            "operation": operation,
            "request_digest": _digest(operation, request),
            "result": None,
            "created_at": utcnow(),
        },
    )
    if inserted:
        return None
    return lookup(session, key, operation, request)


def complete(session: Session, key: str, result: Mapping[str, Any]) -> None:
    session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(result=dict(result)))
