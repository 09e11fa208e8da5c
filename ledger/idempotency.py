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


def digest(operation: str, request: Mapping[str, Any]) -> str:
    """The keyed digest of a request, as stored beside its key."""
    canonical = json.dumps({"op": operation, "request": request}, sort_keys=True, separators=(",", ":"))
    return get_vault().fingerprint(canonical.encode())


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest("idempotency_key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters")
    return key


def lookup(
    session: Session,
    key: str,
    operation: str,
    request: Mapping[str, Any],
    *,
    earlier_form: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The stored result for this key, None if the key is new; a conflict if it differs."""
    check_key(key)
    record = session.execute(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if record is None:
        return None
    return first_result(
        key,
        operation,
        request,
        stored_operation=record.operation,
        stored_digest=record.request_digest,
        stored_result=record.result,
        earlier_form=earlier_form,
    )


def first_result(
    key: str,
    operation: str,
    request: Mapping[str, Any],
    *,
    stored_operation: str,
    stored_digest: str,
    stored_result: Mapping[str, Any] | None,
    earlier_form: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The stored result when the stored key was for this request; else a conflict.

    ``earlier_form`` is the same request as an earlier release described it, so that a
    key stored before a change of form still replays.
    """
    same = stored_operation == operation and (
        stored_digest == digest(operation, request)
        or (earlier_form is not None and stored_digest == digest(operation, earlier_form))
    )
    if not same:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was used before for a different request ({stored_operation})"
        )
    if stored_result is None:
        raise IdempotencyConflict(f"idempotency key {key!r} is in use by a request still in progress")
    return dict(stored_result)


def claim(session: Session, key: str, operation: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """Reserve the key for this request; or return the first result if it was seen before."""
    check_key(key)
    inserted = insert_ignore(
        session,
        IdempotencyRecord,
        {
            "key": key,
            "operation": operation,
            "request_digest": digest(operation, request),
            "result": None,
            "created_at": utcnow(),
        },
    )
    if inserted:
        return None
    return lookup(session, key, operation, request)


def complete(session: Session, key: str, result: Mapping[str, Any]) -> None:
    session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(result=dict(result)))
