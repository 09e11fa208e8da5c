"""Orders: place one (idempotent by ``Idempotency-Key``) and read it back, codes masked."""

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
from api.schemas import OrderOut, OrderPlaced
from api.writes import Answer, run
from delivery.ops import lookup_order
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
