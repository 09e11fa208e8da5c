"""Response bodies from the ledger's and delivery's own views (codes are masked there)."""

from __future__ import annotations

from dataclasses import asdict

from api import schemas
from delivery.ops import CancelReport, DeliveryView, OrderView
from delivery.ops.lookups import masked_card
from delivery.ops.swaps import SwapReport
from ledger import Balance, CardView, CheckoutState, HistoryPage, RedemptionResult


def delivery(view: DeliveryView) -> schemas.DeliveryOut:
    fields = asdict(view)
    fields.pop("log")
    return schemas.DeliveryOut(**fields)


def order(view: OrderView) -> schemas.OrderOut:
    return schemas.OrderOut(
        id=view.id,
        reference=view.reference,
        status=view.status,
        purchaser=schemas.Purchaser(name=view.purchaser_name, email=view.purchaser_email),
        created_at=view.created_at,
        error=view.error,
        payment=view.payment,
        review=view.review,
        payment_due_at=view.payment_due_at,
        lines=[schemas.LineOut(**asdict(line)) for line in view.lines],
        deliveries=[delivery(d) for d in view.deliveries],
    )


def redemption(result: RedemptionResult) -> schemas.RedemptionOut:
    return schemas.RedemptionOut.model_validate(asdict(result))


def balance(result: Balance) -> schemas.BalanceOut:
    return schemas.BalanceOut.model_validate(asdict(result))


def history(account: str, marketplace: str, page: HistoryPage) -> schemas.HistoryOut:
    return schemas.HistoryOut(
        account=account,
        marketplace=marketplace,
        currency=page.currency,
        items=[schemas.HistoryItemOut.model_validate(asdict(item)) for item in page.items],
        next_cursor=page.next_cursor,
    )


def checkout(state: CheckoutState) -> schemas.CheckoutOut:
    return schemas.CheckoutOut(**asdict(state), outstanding=state.outstanding)


def cancel(report: CancelReport) -> schemas.CancelOut:
    return schemas.CancelOut.model_validate(asdict(report))


def card(view: CardView) -> schemas.CardOut:
    return schemas.CardOut(
        card_id=view.card_id,
        card=masked_card(view.card_id, view.last4) or "",
        marketplace=view.marketplace,
        currency=view.currency,
        amount=view.amount,
        status=view.status,
        activated_at=view.activated_at,
    )


def swap(report: SwapReport) -> schemas.SwapOut:
    fields = asdict(report)
    fields["delivery"] = delivery(report.delivery)
    return schemas.SwapOut(**fields)
