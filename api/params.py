"""Parameters several routes share: the Idempotency-Key header and bounded ids in paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path

from api import idempotency
from api.schemas import MAX_ID

IdempotencyKey = Annotated[
    str,
    Header(
        alias=idempotency.HEADER,
        min_length=1,
        max_length=idempotency.MAX_LENGTH + 2,
        pattern=idempotency.PATTERN,
        description="Unique per request you mean once (a UUID, or your own order number and step); "
        "the same key and body get the first answer again",
    ),
]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
