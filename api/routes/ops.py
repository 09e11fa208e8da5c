"""What ops do by hand, over HTTP: cancel an order, replay a failed delivery, resend a gift to
a corrected address, reissue a line's card, activate a physical card. Each takes an
``Idempotency-Key``, so a retried call never resends twice."""

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
from api.schemas import AddressIn, CancelOut, CardOut, DeliveryOut
from api.writes import Answer, run
from delivery import ops
from ledger import activate_card

router = APIRouter(prefix="/v1", tags=["ops"])
OPS_RESPONSES = openapi_responses(
    "idempotency-key-missing",
    "idempotency-key-reused",
    "unauthorized",
    "forbidden",
    "not-found",
    "invalid-state",
)
Ops = Annotated[Caller, Depends(require("ops"))]


@router.post(
    "/orders/{order_id}/cancel", response_model=CancelOut, responses=OPS_RESPONSES, summary="Cancel an order"
)
def cancel_order(
    order_id: PathId, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """Stops every unsent delivery of the order and voids those cards; cards already sent stay
    valid and are listed as kept."""

    def work(session: Session, _key: str) -> Answer:
        return Answer(200, views.cancel(ops.cancel_order(session, order_id)).model_dump(mode="json"))

    return run(request, caller, idempotency_key, None, work)


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    responses=OPS_RESPONSES,
    summary="Queue a failed delivery again",
)
def replay_delivery(
    delivery_id: PathId, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """Only a delivery that failed for good (after its cause was fixed)."""

    def work(session: Session, _key: str) -> Answer:
        return Answer(200, views.delivery(ops.replay(session, delivery_id)).model_dump(mode="json"))

    return run(request, caller, idempotency_key, None, work)


@router.post(
    "/deliveries/{delivery_id}/resend",
    response_model=DeliveryOut,
    status_code=201,
    responses=OPS_RESPONSES,
    summary="Send a gift's card again to a corrected address",
)
def resend_delivery(
    delivery_id: PathId, address: AddressIn, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """An email gift takes ``email``, a text-message gift ``phone``; the answer is the new delivery."""

    def work(session: Session, _key: str) -> Answer:
        view = ops.resend(session, delivery_id, email=address.email, phone=address.phone)
        return Answer(201, views.delivery(view).model_dump(mode="json"))

    return run(request, caller, idempotency_key, address.model_dump(mode="json"), work)


@router.post(
    "/order-lines/{line_id}/reissue",
    response_model=DeliveryOut,
    status_code=201,
    responses=OPS_RESPONSES,
    summary="Void a line's card, issue a new code and deliver it",
)
def reissue_line(
    line_id: PathId, address: AddressIn, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """For a code that may have reached someone else; optionally to a corrected address."""

    def work(session: Session, _key: str) -> Answer:
        view = ops.reissue(session, line_id, email=address.email, phone=address.phone)
        return Answer(201, views.delivery(view).model_dump(mode="json"))

    return run(request, caller, idempotency_key, address.model_dump(mode="json"), work)


@router.post(
    "/cards/{card_id}/activate",
    response_model=CardOut,
    responses=OPS_RESPONSES,
    summary="Activate a physical card by hand",
)
def activate(card_id: PathId, request: Request, caller: Ops, idempotency_key: IdempotencyKey) -> JSONResponse:
    """For a card that reached its recipient without the vendor's shipped report; a redeemed
    or voided card is refused (invalid-state). Activating an active card changes nothing."""

    def work(session: Session, key: str) -> Answer:
        view = activate_card(session, card_id, idempotency_key=key)
        return Answer(200, views.card(view).model_dump(mode="json"))

    return run(request, caller, idempotency_key, None, work)
