"""The ``Idempotency-Key`` request header (IETF draft-ietf-httpapi-idempotency-key-header).

Every request that changes something carries one. The first successful answer is kept
(:class:`api.models.IdempotentResponse`) in the same transaction as the work, and a
request with the same key and the same method, path and body gets that answer again
(``Idempotent-Replayed: true``). With another request the key is refused with 409
``idempotency-key-reused`` (the draft suggests 422; giftq keeps 422 for invalid fields
and answers a reused key as the conflict it is). Without the header: 400
``idempotency-key-missing``, as the draft says.

The key row is written first: on PostgreSQL a twin request sent at the same moment
waits on its unique index until the first commits, then replays its answer; on SQLite
writers take turns anyway. A refused request leaves no row, so it can be sent again with
the same key once its cause is fixed.

Keys belong to the API key that sent them: two storefronts may both use ``order-1``.
The same namespacing applies to the keys handed to the ledger and to intake
(:func:`scoped`).

The value is an sf-string (``"abc"``) in the draft; a bare token is accepted too. 1 to
180 visible ASCII characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from api.errors import Problem
from api.keys import Caller
from api.models import IdempotentResponse
from giftq.db import utcnow
from ledger.codes import get_vault
from ledger.sqlutil import insert_ignore

HEADER = "Idempotency-Key"
MAX_LENGTH = 180
PATTERN = r'^"?[\x21-\x7e]{1,180}"?$'
_VALUE = re.compile(r"^[\x21-\x7e]{1,180}$")
IN_PROGRESS = 0


def parse(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not _VALUE.match(value):
        raise Problem(
            "validation",
            f"{HEADER} must be 1 to {MAX_LENGTH} visible ASCII characters",
            extensions={"errors": [{"header": HEADER, "detail": "1 to 180 visible ASCII characters"}]},
        )
    return value


def scoped(caller: Caller, key: str) -> str:
    """The key as the ledger and intake see it: one namespace per API key."""
    return f"api:{caller.key_id}:{key}"


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(
        {"method": method, "path": path, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return get_vault().fingerprint(canonical.encode())


def begin(session: Session, caller: Caller, key: str, digest: str) -> IdempotentResponse | None:
    """Reserve ``key`` for this request; or the first answer if it was given before."""
    inserted = insert_ignore(
        session,
        IdempotentResponse,
        {
            "api_key_id": caller.id,
            "key": key,
            "request_digest": digest,
            "status": IN_PROGRESS,
            "body": None,
            "location": None,
            "created_at": utcnow(),
        },
    )
    if inserted:
        return None
    first = session.scalars(
        select(IdempotentResponse)
        .where(IdempotentResponse.api_key_id == caller.id, IdempotentResponse.key == key)
        .execution_options(populate_existing=True)
    ).one()
    if first.request_digest != digest:
        raise Problem(
            "idempotency-key-reused",
            f"{HEADER} {key!r} was used before for a different request",
        )
    return first


def finish(session: Session, caller: Caller, key: str, answer: Mapping[str, Any]) -> None:
    """Keep the answer (``status``, ``body``, ``location``) in the key's row."""
    session.execute(
        update(IdempotentResponse)
        .where(IdempotentResponse.api_key_id == caller.id, IdempotentResponse.key == key)
        .values(**answer)
    )


def abandon(session: Session, caller: Caller, key: str) -> None:
    """Give the key back: the request was refused, and the refusal is not kept."""
    session.execute(
        delete(IdempotentResponse).where(
            IdempotentResponse.api_key_id == caller.id, IdempotentResponse.key == key
        )
    )
