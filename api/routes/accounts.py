"""A recipient account: redeem a code into it; its balance now or at an instant; its history.

A redemption names the end customer's client address so that the per-client lockout
applies to every attempt, whichever storefront relays it. The code travels only in the
request body: never in a URL, a log line or an answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from api import problems, views
from api.auth import require
from api.clients import lockout_client
from api.keys import Caller
from api.params import IdempotencyKey
from api.problems import openapi_responses
from api.schemas import Account, BalanceOut, HistoryOut, RedeemIn, RedemptionOut
from api.writes import Answer, run
from delivery.orders.schemas import Marketplace
from giftq.db import session_factory
from ledger import balance, history, redeem
from ledger.errors import InvalidRequest, RedemptionRefused, WrongMarketplace

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post(
    "/redemptions",
    response_model=RedemptionOut,
    responses=openapi_responses(
        "idempotency-key-missing",
        "idempotency-key-reused",
        "unauthorized",
        "forbidden",
        "code-mistyped",
        "code-not-valid",
        "already-redeemed",
        "wrong-marketplace",
        "card-not-active",
        "card-voided",
        "card-expired",
        "too-many-attempts",
    ),
    summary="Redeem a claim code into an account's balance",
)
def create_redemption(
    redemption: RedeemIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("redeem"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """The card's whole value moves into the account's balance in that marketplace, once.

    Refusals are problems with a type per reason; after too many failed attempts (per
    account, and per client address) the answer is 429 with ``Retry-After``.
    """
    body = redemption.model_dump(mode="json")

    def work(session: Session, key: str) -> Answer:
        result = redeem(
            session,
            redemption.code,
            account=redemption.account,
            marketplace=redemption.marketplace,
            idempotency_key=key,
            client=lockout_client(redemption.client_address),
        )
        return Answer(200, views.redemption(result).model_dump(mode="json"))

    try:
        return run(request, caller, idempotency_key, body, work)
    except WrongMarketplace as refused:
        raise problems.redemption_problem(refused, card_marketplace=refused.card_marketplace) from None
    except RedemptionRefused as refused:
        raise problems.redemption_problem(refused) from None


@router.get(
    "/balance",
    response_model=BalanceOut,
    responses=openapi_responses("unauthorized", "forbidden"),
    summary="An account's balance, now or at an instant",
)
def read_balance(
    caller: Annotated[Caller, Depends(require("redeem", "checkout"))],
    account: Annotated[Account, Query()],
    marketplace: Annotated[Marketplace, Query()],
    at: Annotated[AwareDatetime | None, Query(description="An instant with its offset; default: now")] = None,
) -> BalanceOut:
    """An account that never received anything has a balance of 0."""
    try:
        when = at.astimezone(dt.UTC) if at is not None else None
    except OverflowError:
        raise problems.validation([("query", "at", "is out of range")]) from None
    with session_factory()() as session:
        return views.balance(balance(session, account=account, marketplace=marketplace, at=when))


@router.get(
    "/history",
    response_model=HistoryOut,
    responses=openapi_responses("unauthorized", "forbidden"),
    summary="An account's entries with the balance after each, newest first",
)
def read_history(
    caller: Annotated[Caller, Depends(require("redeem", "checkout"))],
    account: Annotated[Account, Query()],
    marketplace: Annotated[Marketplace, Query()],
    cursor: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> HistoryOut:
    """Pages by ``cursor``: pass the ``next_cursor`` of a page to get the next, older one."""
    with session_factory()() as session:
        try:
            page = history(session, account=account, marketplace=marketplace, cursor=cursor, limit=limit)
        except InvalidRequest as exc:
            raise problems.validation([("query", "cursor", str(exc))]) from None
    return views.history(account, marketplace, page)
