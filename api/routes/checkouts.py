"""Spending a balance at checkout: hold it, then capture or release; refund later."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api import views
from api.auth import require
from api.keys import Caller
from api.params import IdempotencyKey, PathId
from api.problems import openapi_responses
from api.schemas import ApplyBalanceIn, CheckoutOut, RefundIn, SettleIn
from api.writes import Answer, run
from ledger import apply_balance, capture, refund, release

router = APIRouter(prefix="/v1/checkouts", tags=["checkout"])
WRITE_PROBLEMS = ("idempotency-key-missing", "idempotency-key-reused", "unauthorized", "forbidden")


@router.post(
    "",
    response_model=CheckoutOut,
    status_code=201,
    responses={
        200: {"description": "Nothing held: the balance is zero", "model": CheckoutOut},
        **openapi_responses(*WRITE_PROBLEMS),
    },
    summary="Apply an account's balance to a storefront order",
)
def create_checkout(
    checkout: ApplyBalanceIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("checkout"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Holds up to ``order_total`` of the balance; ``remaining_to_pay`` is what the store collects
    another way. 201 with the checkout; 200 with ``checkout_id`` null when the balance is zero."""

    def work(session: Session, key: str) -> Answer:
        state = apply_balance(
            session,
            account=checkout.account,
            marketplace=checkout.marketplace,
            order_ref=checkout.order_ref,
            order_total=checkout.order_total,
            idempotency_key=key,
        )
        body = views.checkout(state).model_dump(mode="json")
        if state.checkout_id is None:
            return Answer(200, body)
        return Answer(201, body)

    return run(request, caller, idempotency_key, checkout.model_dump(mode="json"), work)


def _settle(
    operation: str, request: Request, caller: Caller, raw_key: str, *, checkout_id: int, amount: int | None
) -> JSONResponse:
    def work(session: Session, key: str) -> Answer:
        if operation == "capture":
            state = capture(session, checkout_id, amount=amount, idempotency_key=key)
        elif operation == "release":
            state = release(session, checkout_id, amount=amount, idempotency_key=key)
        else:
            assert amount is not None
            state = refund(session, checkout_id, amount=amount, idempotency_key=key)
        return Answer(200, views.checkout(state).model_dump(mode="json"))

    return run(request, caller, raw_key, {"amount": amount}, work)


SETTLE_RESPONSES = openapi_responses(*WRITE_PROBLEMS, "not-found", "insufficient-funds")


@router.post(
    "/{checkout_id}/capture",
    response_model=CheckoutOut,
    responses=SETTLE_RESPONSES,
    summary="Take held money as revenue",
)
def capture_checkout(
    checkout_id: PathId,
    settle: SettleIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("checkout"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """``amount`` defaults to all that is still held."""
    return _settle("capture", request, caller, idempotency_key, checkout_id=checkout_id, amount=settle.amount)


@router.post(
    "/{checkout_id}/release",
    response_model=CheckoutOut,
    responses=SETTLE_RESPONSES,
    summary="Give held money back to the balance",
)
def release_checkout(
    checkout_id: PathId,
    settle: SettleIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("checkout"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """``amount`` defaults to all that is still held."""
    return _settle("release", request, caller, idempotency_key, checkout_id=checkout_id, amount=settle.amount)


@router.post(
    "/{checkout_id}/refund",
    response_model=CheckoutOut,
    responses=SETTLE_RESPONSES,
    summary="Put captured money back into the balance",
)
def refund_checkout(
    checkout_id: PathId,
    refund_in: RefundIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("checkout"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Never more than was captured for this checkout and not refunded yet."""
    return _settle(
        "refund", request, caller, idempotency_key, checkout_id=checkout_id, amount=refund_in.amount
    )
