"""Orders: place one (idempotent by ``Idempotency-Key``), answer for its payment when it was
placed awaiting payment, and read it back, codes masked."""

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
from api.schemas import HoldOut, OrderOut, OrderPlaced, PaymentIn
from api.writes import Answer, run
from delivery.ops import lookup_order
from delivery.orders import holds
from delivery.orders.intake import place_order
from delivery.orders.schemas import Order
from giftq.db import session_factory

router = APIRouter(prefix="/v1/orders", tags=["orders"])


@router.post(
    "",
    status_code=201,
    response_model=OrderPlaced,
    responses=openapi_responses(
        "idempotency-key-missing", "idempotency-key-reused", "unauthorized", "forbidden"
    ),
    summary="Place an order",
)
def create_order(
    order: Order,
    request: Request,
    caller: Annotated[Caller, Depends(require("orders"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Validate and store the order; its cards are issued and delivered by the workers.

    The same ``Idempotency-Key`` with the same order answers as the first time did.
    """
    body = order.model_dump(mode="json")

    def work(session: Session, key: str) -> Answer:
        placed = place_order(order, idempotency_key=key, session=session)
        return Answer(201, placed.as_dict(), f"/v1/orders/{placed.order_id}")

    return run(request, caller, idempotency_key, body, work)


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    responses=openapi_responses("unauthorized", "forbidden", "not-found"),
    summary="Read an order with its lines and deliveries",
)
def read_order(order_id: PathId, caller: Annotated[Caller, Depends(require("orders", "ops"))]) -> OrderOut:
    """Its status, lines and every delivery; cards as their id and last four characters."""
    with session_factory()() as session:
        return views.order(lookup_order(session, order_id))


@router.post(
    "/{order_id}/payment",
    response_model=HoldOut,
    responses=openapi_responses(
        "idempotency-key-missing",
        "idempotency-key-reused",
        "unauthorized",
        "forbidden",
        "not-found",
        "invalid-state",
    ),
    summary="Confirm or decline the payment of an order placed awaiting payment",
)
def answer_payment(
    order_id: PathId,
    payment: PaymentIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("orders"))],
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """``confirmed`` releases the order (its cards are issued, or it goes on to its fraud
    review); ``declined`` cancels it and tells the purchaser. Answering again as before
    changes nothing (``changed`` false); an order not held for payment is invalid-state."""
    body = payment.model_dump(mode="json")
    answer = holds.confirm_payment if payment.outcome == "confirmed" else holds.decline_payment

    def work(session: Session, _key: str) -> Answer:
        return Answer(200, answer(order_id, session=session).as_dict())

    return run(request, caller, idempotency_key, body, work)
