"""Who is calling: the ``Authorization: Bearer gq_...`` key of a request, and its scopes.

A missing, malformed, unknown, wrong or revoked key is refused with 401, a key without
the scope a route needs with 403. Each refusal is logged with its reason, the key's
public id when the token had one, the method, path and client: never the token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Problem
from api.keys import Caller, Refusal, authenticate
from giftq.db import session_factory

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key made with `giftq api-keys create`: `Authorization: Bearer gq_...`",
)


def require(*scopes: str) -> Callable[..., Caller]:
    """A dependency that admits a key holding any one of ``scopes``."""

    def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        token = credentials.credentials if credentials is not None else None
        with session_factory()() as session:
            found = authenticate(session, token)
        client = request.client.host if request.client else "-"
        if isinstance(found, Refusal):
            log.warning(
                "API key refused (%s): key %s, %s %s, client %s",
                found.reason,
                found.key_id or "-",
                request.method,
                request.url.path,
                client,
            )
            raise Problem(
                "unauthorized",
                "no API key was given" if found.reason == "missing" else "the API key is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="giftq"'},
            )
        request.state.api_key = found.key_id
        if not found.scopes & set(scopes):
            log.warning(
                "API key %s lacks scope %s: %s %s, client %s",
                found.key_id,
                " or ".join(scopes),
                request.method,
                request.url.path,
                client,
            )
            raise Problem("forbidden", f"this needs an API key with the {' or '.join(scopes)} scope")
        return found

    return caller
