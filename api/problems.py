"""Errors as RFC 9457 problem details (``application/problem+json``), one stable type per error.

Every type is ``urn:giftq:problem:<slug>`` (a URN, like the order schema's
``urn:giftq:schema:order:1``: stable whatever host serves the API). Clients branch on
``type``; ``title`` is fixed per type; ``detail`` says what happened this time, in
English, and never holds a claim code (every detail passes
:func:`ledger.codes.redact.redact` as a last line of defence).

:func:`from_exception` maps ledger and delivery errors to their problem, so routes let
those errors rise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from api.errors import Problem, field_errors
from api.idempotency import HEADER
from delivery import errors as delivery_errors
from ledger import errors as ledger_errors
from ledger.codes.redact import redact

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
URN = "urn:giftq:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return URN + self.slug


TYPES: dict[str, ProblemType] = {
    t.slug: t
    for t in (
        ProblemType("validation", 422, "The request is not valid"),
        ProblemType("idempotency-key-missing", 400, "This request needs an Idempotency-Key header"),
        ProblemType("idempotency-key-reused", 409, "The Idempotency-Key was used for another request"),
        ProblemType("unauthorized", 401, "A valid API key is needed"),
        ProblemType("forbidden", 403, "The API key does not have the scope this needs"),
        ProblemType("not-found", 404, "Not found"),
        ProblemType("method-not-allowed", 405, "Method not allowed"),
        ProblemType("code-mistyped", 422, "The code looks mistyped"),
        ProblemType("code-not-valid", 422, "The code is not valid"),
        ProblemType("already-redeemed", 409, "The card was already redeemed"),
        ProblemType("wrong-marketplace", 422, "The card belongs to another marketplace"),
        ProblemType("card-not-active", 409, "The card is not active yet"),
        ProblemType("card-voided", 409, "The card was voided"),
        ProblemType("card-expired", 409, "The card expired"),
        ProblemType("too-many-attempts", 429, "Too many failed attempts"),
        ProblemType("insufficient-funds", 409, "Not enough money for this"),
        ProblemType("invalid-state", 409, "Not possible in the current state"),
        ProblemType("unavailable", 503, "Not ready to serve"),
        ProblemType("internal-error", 500, "Internal error"),
    )
}

REDEMPTION_TYPES: dict[type[ledger_errors.RedemptionRefused], str] = {
    ledger_errors.CodeMistyped: "code-mistyped",
    ledger_errors.CodeNotValid: "code-not-valid",
    ledger_errors.AlreadyRedeemed: "already-redeemed",
    ledger_errors.WrongMarketplace: "wrong-marketplace",
    ledger_errors.CardNotActive: "card-not-active",
    ledger_errors.CardVoided: "card-voided",
    ledger_errors.CardExpired: "card-expired",
    ledger_errors.TooManyAttempts: "too-many-attempts",
}


def response(problem: Problem) -> JSONResponse:
    kind = TYPES[problem.slug]
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": redact(problem.detail),
        **problem.extensions,
    }
    return JSONResponse(body, status_code=kind.status, media_type=MEDIA_TYPE, headers=problem.headers)


def from_exception(exc: Exception) -> Problem | None:
    """The problem a ledger or delivery error is at the HTTP edge; None for anything else."""
    if isinstance(exc, ledger_errors.RedemptionRefused):
        return redemption_problem(exc)
    match exc:
        case ledger_errors.InvalidRequest() | delivery_errors.InvalidOrder():
            return _invalid(exc)
        case ledger_errors.IdempotencyConflict() | delivery_errors.IdempotencyConflict():
            return Problem("idempotency-key-reused", str(exc))
        case ledger_errors.NotFound() | delivery_errors.NotFound():
            return Problem("not-found", str(exc))
        case ledger_errors.InsufficientFunds():
            return Problem("insufficient-funds", str(exc))
        case (
            ledger_errors.InvalidState()
            | delivery_errors.OpsRefused()
            | delivery_errors.HoldRefused()
            | delivery_errors.InvalidTransition()
        ):
            return Problem("invalid-state", str(exc))
    return None


def redemption_problem(
    exc: ledger_errors.RedemptionRefused, *, card_marketplace: str | None = None
) -> Problem:
    slug = REDEMPTION_TYPES.get(type(exc), "code-not-valid")
    extensions: dict[str, Any] = {"reason": exc.reason}
    headers: dict[str, str] = {}
    if isinstance(exc, ledger_errors.AlreadyRedeemed):
        extensions["to_this_account"] = exc.to_this_account
    if isinstance(exc, ledger_errors.CardExpired):
        extensions["expired_on"] = exc.expired_on.isoformat()
    if isinstance(exc, ledger_errors.TooManyAttempts):
        extensions["retry_after"] = exc.retry_after
        headers["Retry-After"] = str(exc.retry_after)
    if card_marketplace is not None:
        extensions["card_marketplace"] = card_marketplace
    return Problem(slug, str(exc), extensions=extensions, headers=headers)


def _invalid(exc: Exception) -> Problem:
    if isinstance(exc, delivery_errors.InvalidOrder):
        entries = [("body", e.path.removeprefix("order."), e.message) for e in exc.errors]
    else:
        entries = [("body", "", str(exc))]
    problem = validation(entries, "the request is not valid")
    if isinstance(exc, delivery_errors.OrderOverLimit):
        # Each limit as data too: a storefront can show "at most 2,000.00 USD" its own way.
        problem.detail = "the order goes past a limit of its marketplace: " + "; ".join(
            b.message for b in exc.breaches
        )
        problem.extensions["limits"] = [
            {
                "limit": b.limit,
                "marketplace": b.marketplace,
                "currency": b.currency,
                "value": b.value,
                "amount": b.amount,
                "pointer": field_errors([("body", b.path.removeprefix("order."), "")])[0]["pointer"],
            }
            for b in exc.breaches
        ]
    return problem


def validation(entries: list[tuple[str, str, str]], detail: str | None = None) -> Problem:
    errors = [{k: redact(v) for k, v in e.items()} for e in field_errors(entries)]
    names = ", ".join(e.get("pointer") or e.get("parameter") or e.get("header") or "" for e in errors)
    return Problem(
        "validation",
        detail or f"{len(errors)} invalid field{'s' if len(errors) != 1 else ''}: {names}",
        extensions={"errors": errors},
    )


def from_validation(errors: Sequence[Any]) -> Problem:
    """A validation problem naming every bad field; a missing Idempotency-Key is its own (400)."""
    entries: list[tuple[str, str, str]] = []
    for error in errors:
        where, *path = [str(part) for part in error.get("loc", ())] or ["body"]
        if error.get("type") == "missing" and where == "header" and path == [HEADER]:
            return Problem("idempotency-key-missing", f"send an {HEADER} header with this request")
        extra = (error.get("ctx") or {}).get("field")
        if extra:
            path += str(extra).split(".")
        message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            path, message = [], "the body is not valid JSON"
        entries.append((where, ".".join(path), message))
    return validation(entries)


def openapi_responses(*slugs: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status its problems can have, as problem+json."""
    by_status: dict[int, list[ProblemType]] = {}
    for slug in ("validation", "internal-error", *slugs):
        kind = TYPES[slug]
        by_status.setdefault(kind.status, []).append(kind)
    answers: dict[int | str, dict[str, Any]] = {}
    for status, kinds in sorted(by_status.items()):
        answer: dict[str, Any] = {
            "description": "; ".join(f"{k.title} ({k.uri})" for k in kinds),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        if status == 429:
            answer["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            }
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
        answers[status] = answer
    return answers
