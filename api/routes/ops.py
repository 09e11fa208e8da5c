"""What ops do by hand, over HTTP: cancel an order, hold one for a fraud review and release or
reject it, replay a failed delivery, resend a gift to a corrected address, reissue a line's
card, reinstate an expired card, activate a physical card, swap a card into another
marketplace. Each takes an
``Idempotency-Key``, so a retried call never resends twice, and each is written to the
ops audit log (``giftq ops audit``) with the API key's id as the actor: what was done in
the action's own transaction, a refusal in one of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api import views
from api.auth import require
from api.keys import Caller
from api.params import IdempotencyKey, PathId
from api.problems import openapi_responses
from api.schemas import AddressIn, CancelOut, CardOut, DeliveryOut, HoldOut, SwapIn, SwapOut
from api.writes import Answer, run
from delivery import ops
from delivery.errors import DeliveryError
from delivery.ops import audit, swaps
from delivery.ops.models import Outcome
from giftq.db import session_factory
from ledger import activate_card
from ledger.errors import LedgerError

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


def _actor(caller: Caller) -> str:
    return f"api-key:{caller.key_id}"


def _done(session: Session, caller: Caller, action: str, arguments: dict[str, Any], detail: str) -> None:
    """The action's audit row, in the action's own transaction: both commit or neither."""
    audit.record(
        session, actor=_actor(caller), action=action, arguments=arguments, outcome=Outcome.DONE, detail=detail
    )


def _audited(
    caller: Caller, action: str, arguments: dict[str, Any], call: Callable[[], JSONResponse]
) -> JSONResponse:
    """Run an ops route; a refusal is written to the audit log in a transaction of its own,
    once the action's was rolled back (an idempotent replay writes nothing: nothing was done)."""
    try:
        return call()
    except (DeliveryError, LedgerError) as exc:
        with session_factory().begin() as session:
            audit.record(
                session,
                actor=_actor(caller),
                action=action,
                arguments=arguments,
                outcome=Outcome.REFUSED,
                detail=str(exc),
            )
        raise


@router.post(
    "/orders/{order_id}/cancel", response_model=CancelOut, responses=OPS_RESPONSES, summary="Cancel an order"
)
def cancel_order(
    order_id: PathId, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """Stops every unsent delivery of the order and voids those cards; cards already sent stay
    valid and are listed as kept."""

    arguments = {"order_id": order_id}

    def work(session: Session, _key: str) -> Answer:
        report = ops.cancel_order(session, order_id)
        _done(session, caller, "cancel", arguments, f"voided {report.voided_cards}, kept {report.kept_cards}")
        return Answer(200, views.cancel(report).model_dump(mode="json"))

    return _audited(caller, "cancel", arguments, lambda: run(request, caller, idempotency_key, None, work))


_REVIEW: dict[str, tuple[Callable[[Session, int], ops.HoldAnswer], str, str]] = {
    "review": (
        ops.hold_for_review,
        "Hold an order for a fraud review",
        "Only an order with no card issued yet (placed, or awaiting payment); nothing of it is "
        "issued or sent until ops release it.",
    ),
    "release": (
        ops.release_review,
        "Release an order from its fraud review",
        "Its cards are issued and sent (or, if its payment is still pending, once it is confirmed).",
    ),
    "reject": (
        ops.reject_review,
        "Reject an order in its fraud review",
        "The order is cancelled with nothing issued, and the purchaser is emailed why.",
    ),
}
"""The fraud review's routes: what each does, its summary and its description."""


def _review_route(action: str) -> None:
    decide, summary, description = _REVIEW[action]

    def route(
        order_id: PathId, request: Request, caller: Ops, idempotency_key: IdempotencyKey
    ) -> JSONResponse:
        arguments = {"order_id": order_id}

        def work(session: Session, _key: str) -> Answer:
            answer = decide(session, order_id)
            _done(session, caller, action, arguments, f"order {order_id} {answer.status}")
            return Answer(200, answer.as_dict())

        return _audited(caller, action, arguments, lambda: run(request, caller, idempotency_key, None, work))

    route.__name__ = f"{action}_order"
    route.__doc__ = f"{description} The same decision again changes nothing (``changed`` false)."
    router.post(
        f"/orders/{{order_id}}/{action}", response_model=HoldOut, responses=OPS_RESPONSES, summary=summary
    )(route)


for _action in _REVIEW:
    _review_route(_action)


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

    arguments = {"delivery_id": delivery_id}

    def work(session: Session, _key: str) -> Answer:
        view = ops.replay(session, delivery_id)
        _done(session, caller, "replay", arguments, f"delivery {view.id} {view.status}")
        return Answer(200, views.delivery(view).model_dump(mode="json"))

    return _audited(caller, "replay", arguments, lambda: run(request, caller, idempotency_key, None, work))


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

    arguments = {"delivery_id": delivery_id, **address.model_dump(exclude_none=True)}

    def work(session: Session, _key: str) -> Answer:
        view = ops.resend(session, delivery_id, email=address.email, phone=address.phone)
        _done(session, caller, "resend", arguments, f"new delivery {view.id} to {view.to_address}")
        return Answer(201, views.delivery(view).model_dump(mode="json"))

    body = address.model_dump(mode="json")
    return _audited(caller, "resend", arguments, lambda: run(request, caller, idempotency_key, body, work))


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

    arguments = {"line_id": line_id, **address.model_dump(exclude_none=True)}

    def work(session: Session, _key: str) -> Answer:
        view = ops.reissue(session, line_id, email=address.email, phone=address.phone)
        _done(session, caller, "reissue", arguments, f"new card {view.card}, delivery {view.id}")
        return Answer(201, views.delivery(view).model_dump(mode="json"))

    body = address.model_dump(mode="json")
    return _audited(caller, "reissue", arguments, lambda: run(request, caller, idempotency_key, body, work))


@router.post(
    "/cards/{card_id}/reinstate",
    response_model=DeliveryOut,
    status_code=201,
    responses=OPS_RESPONSES,
    summary="Replace an expired card with a new code of the same value and deliver it",
)
def reinstate_card(
    card_id: PathId, address: AddressIn, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """The value comes back from the marketplace's breakage account, once per card; the
    expired card stays expired. Delivered where its last gift went, or to a corrected
    address. A card that is not expired, or was reinstated before, is refused (invalid-state)."""

    arguments = {"card_id": card_id, **address.model_dump(exclude_none=True)}

    def work(session: Session, _key: str) -> Answer:
        view = ops.reinstate(session, card_id, email=address.email, phone=address.phone)
        _done(session, caller, "reinstate", arguments, f"new card {view.card}, delivery {view.id}")
        return Answer(201, views.delivery(view).model_dump(mode="json"))

    body = address.model_dump(mode="json")
    return _audited(caller, "reinstate", arguments, lambda: run(request, caller, idempotency_key, body, work))


@router.post(
    "/cards/{card_id}/activate",
    response_model=CardOut,
    responses=OPS_RESPONSES,
    summary="Activate a physical card by hand",
)
def activate(card_id: PathId, request: Request, caller: Ops, idempotency_key: IdempotencyKey) -> JSONResponse:
    """For a card that reached its recipient without the vendor's shipped report; a redeemed
    or voided card is refused (invalid-state). Activating an active card changes nothing."""

    arguments = {"card_id": card_id}

    def work(session: Session, key: str) -> Answer:
        view = activate_card(session, card_id, idempotency_key=key)
        _done(session, caller, "activate", arguments, f"card {card_id} {view.status}")
        return Answer(200, views.card(view).model_dump(mode="json"))

    return _audited(caller, "activate", arguments, lambda: run(request, caller, idempotency_key, None, work))


@router.post(
    "/cards/{card_id}/swap",
    response_model=SwapOut,
    status_code=201,
    responses=OPS_RESPONSES,
    summary="Swap an unredeemed card into another marketplace and email the new card",
)
def swap_card(
    card_id: PathId, swap: SwapIn, request: Request, caller: Ops, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """The card is voided and its value issued as a card of ``marketplace`` at the exchange rate
    in effect today (rounded down to the minor unit), in one ledger transaction. The new code is
    never in the answer: it goes by email to the holder. No rate for the pair, or a card that is
    not active, is refused (invalid-state)."""

    arguments = {"card_id": card_id, **swap.model_dump(exclude_none=True)}

    def work(session: Session, key: str) -> Answer:
        report = swaps.swap(
            session, card_id, marketplace=swap.marketplace, email=swap.email, idempotency_key=key
        )
        _done(session, caller, "swap", arguments, f"card {card_id} -> card {report.new_card_id}")
        return Answer(201, views.swap(report).model_dump(mode="json"))

    body = swap.model_dump(mode="json")
    return _audited(caller, "swap", arguments, lambda: run(request, caller, idempotency_key, body, work))
