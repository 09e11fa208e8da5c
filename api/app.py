"""The ASGI application: the ``/v1`` API, the provider callbacks, the recipient's pages.

``giftq api`` serves :func:`create_app` with uvicorn. Every error answer is an RFC 9457
problem (:mod:`api.problems`); the recipient's pages answer HTML of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import access_log, problems
from api.callbacks import ROUTERS as CALLBACK_ROUTERS
from api.errors import Problem
from api.pages import mount as mount_pages
from api.routes import accounts, checkouts, health, ops, orders
from api.schemas import ProblemDetails
from delivery.errors import DeliveryError
from delivery.metrics import exposition, instruments
from ledger.errors import LedgerError

log = logging.getLogger(__name__)

TITLE = "giftq"
VERSION = "1"
DESCRIPTION = """\
Place gift-card orders, redeem claim codes into customer balances, spend balances at
checkout. Authenticate with `Authorization: Bearer <API key>` (`giftq api-keys create`).
Every request that changes something takes an `Idempotency-Key` header. Errors are
RFC 9457 problem details with a stable `type` per error. Amounts are integers of minor
units. Claim codes travel only in request bodies and are never echoed back.

Problem types:

"""
DESCRIPTION += "\n".join(f"- `{t.uri}` ({t.status}): {t.title}" for t in problems.TYPES.values()) + "\n"


def create_app() -> FastAPI:
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, docs_url="/docs", redoc_url=None)
    for router in (orders.router, accounts.router, checkouts.router, ops.router, health.router):
        app.include_router(router)
    for router in CALLBACK_ROUTERS:
        app.include_router(router)
    mount_pages(app)
    _mount_metrics(app)
    access_log.install(app)
    _install_handlers(app)
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    return app


def _mount_metrics(app: FastAPI) -> None:
    # No API key: Prometheus scrapes it. It tells counts and amounts, never a code or an
    # address, but still belongs behind the proxy: do not route /metrics to the internet.
    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(exposition.render(), media_type=exposition.CONTENT_TYPE)

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            # The route's template (/v1/orders/{order_id}), never the path: a path may hold a
            # download token, and one label value per order would swamp Prometheus.
            route = getattr(request.scope.get("route"), "path", "unmatched")
            instruments.HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
            instruments.HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)


def openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the problem-details schema the error answers refer to."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["ProblemDetails"] = ProblemDetails.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        app.openapi_schema = document
    return app.openapi_schema


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problems.response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problems.response(problems.from_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return problems.response(Problem("method-not-allowed", f"{request.method} is not allowed here"))
        if exc.status_code == 404:
            return problems.response(Problem("not-found", "there is nothing at this address"))
        return problems.response(Problem("validation", str(exc.detail)))

    @app.exception_handler(LedgerError)
    @app.exception_handler(DeliveryError)
    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        problem = problems.from_exception(exc)
        if problem is None:
            return await _unexpected(request, exc)
        return problems.response(problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc
        )
        return problems.response(Problem("internal-error", "something went wrong on our side"))
