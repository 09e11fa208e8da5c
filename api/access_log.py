"""One log line per request: method, path, status, time, API key id, client.

It replaces uvicorn's access log, which prints the query string: a line here holds the
path only, never a query, a header or a body (request bodies can hold claim codes), and
a download path without its token. A
code pasted into a path by mistake is still masked, by the redaction filter that
:func:`delivery.logs.configure_logging` puts on every handler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

log = logging.getLogger("api.access")


_SECRET_PATHS = ("/printables/",)
"""Paths whose last segment is a capability (a download token): logged without it."""


def _loggable(path: str) -> str:
    for prefix in _SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "…"
    return path


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def access(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            log.info(
                "%s %s %d %.1fms key=%s client=%s",
                request.method,
                _loggable(request.url.path),
                status,
                (time.perf_counter() - started) * 1000,
                getattr(request.state, "api_key", "-"),
                request.client.host if request.client else "-",
            )
