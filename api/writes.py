"""One transaction per write request, with its idempotency key (see :mod:`api.idempotency`).

:func:`run` reserves the key, does the work in the same transaction, keeps the answer
and commits; a replay gets the first answer without doing anything. When the work
raises, everything rolls back and nothing is half-written, with one exception chosen
on purpose: a refused redemption keeps the failure it recorded for the lockout (the
ledger writes it before raising), so the key is given back and that row committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api import idempotency
from api.errors import Problem
from api.keys import Caller
from giftq.db import session_factory
from ledger.errors import RedemptionRefused


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Mapping[str, Any]
    location: str | None = None


Work = Callable[[Session, str], Answer]
"""Does the request's work in the session; gets the key as the ledger and intake see it."""


def run(request: Request, caller: Caller, raw_key: str, body: Any, work: Work) -> JSONResponse:
    key = idempotency.parse(raw_key)
    digest = idempotency.fingerprint(request.method, request.url.path, body)
    with session_factory()() as session:
        session.begin()
        try:
            first = idempotency.begin(session, caller, key, digest)
            if first is not None:
                session.rollback()
                if first.status == idempotency.IN_PROGRESS:  # never committed so; a guard only
                    raise Problem("idempotency-key-reused", "this key's first request is still running")
                return _respond(Answer(first.status, first.body or {}, first.location), replayed=True)
            answer = work(session, idempotency.scoped(caller, key))
            idempotency.finish(
                session,
                caller,
                key,
                {"status": answer.status, "body": dict(answer.body), "location": answer.location},
            )
        except RedemptionRefused:
            idempotency.abandon(session, caller, key)
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()
    return _respond(answer, replayed=False)


def _respond(answer: Answer, *, replayed: bool) -> JSONResponse:
    headers = {"Location": answer.location} if answer.location else {}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(dict(answer.body), status_code=answer.status, headers=headers)
