"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI document).

Amounts are integers of minor units, as everywhere in giftq. Strings that reach the
database refuse control characters (PostgreSQL cannot store NUL), and ids are bounded
to what a BIGINT holds, so no input can turn into a database error.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from delivery.orders.schemas import Marketplace

MAX_ID = 2**63 - 1
MAX_AMOUNT = 10**12
_PRINTABLE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

Account = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=_PRINTABLE),
    Field(description="The storefront's reference of the customer account (never shown to others)"),
]
OrderRef = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_PRINTABLE)]
Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="Minor units")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _client(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


ClientAddress = Annotated[
    str,
    StringConstraints(min_length=2, max_length=45),
    AfterValidator(_client),
    Field(
        description="The end customer's IP address as the storefront saw it: the per-client lockout "
        "counts failed attempts by it (IPv6 by its /64)",
        examples=["203.0.113.9"],
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; extension members depend on ``type``."""

    model_config = ConfigDict(extra="allow", title="ProblemDetails")

    type: str = Field(description="urn:giftq:problem:<slug>, stable per error")
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        default=None, description="validation: one entry per bad field (pointer, parameter or header)"
    )
    reason: str | None = Field(default=None, description="redemption refusals: the ledger's reason word")
    to_this_account: bool | None = Field(default=None, description="already-redeemed: into this account")
    card_marketplace: str | None = Field(default=None, description="wrong-marketplace: the card's own")
    retry_after: int | None = Field(default=None, description="too-many-attempts: seconds to wait")


# --- orders -------------------------------------------------------------------------------


class OrderPlaced(_Out):
    order_id: int
    status: str
    created: bool = Field(description="False when this key placed the order before")


class LineOut(_Out):
    id: int
    position: int
    channel: str
    amount: int
    marketplace: str
    recipient_name: str
    card: str | None = Field(description="The card as '#<id> ••••-XXXX' (last four only), once issued")
    send_at: str | None


class DeliveryOut(_Out):
    id: int
    order_id: int
    line_id: int | None
    kind: str
    channel: str
    status: str
    to_name: str
    to_address: str | None
    card: str | None
    attempts: int
    last_error: str | None
    due_at: dt.datetime
    sent_at: dt.datetime | None
    parent_id: int | None
    possible_duplicates: int


class Purchaser(_Out):
    name: str
    email: str


class OrderOut(_Out):
    id: int
    reference: str | None
    status: str
    purchaser: Purchaser
    created_at: dt.datetime
    error: str | None
    payment: str | None = Field(
        description="pending while the order is held for its payment, then confirmed, declined or "
        "overdue; null for an order placed paid"
    )
    review: str | None = Field(
        description="pending while held for a fraud review, then released or rejected; null if never held"
    )
    payment_due_at: dt.datetime | None = Field(
        description="When a pending payment makes the order overdue (it is then cancelled)"
    )
    lines: list[LineOut]
    deliveries: list[DeliveryOut]


# --- redemption, balance, history ---------------------------------------------------------


class RedeemIn(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The claim code as the customer typed it (spaces, dashes and case do not matter)"
    )
    account: Account
    marketplace: Marketplace
    client_address: ClientAddress


class RedemptionOut(_Out):
    card_id: int
    account: str
    marketplace: str
    amount: int
    currency: str
    balance_after: int
    transaction_id: int
    redeemed_at: dt.datetime


class BalanceOut(_Out):
    account: str
    marketplace: str
    currency: str
    amount: int
    at: dt.datetime | None


class HistoryItemOut(_Out):
    entry_id: int
    transaction_id: int
    kind: str
    amount: int
    balance_after: int
    posted_at: dt.datetime


class HistoryOut(_Out):
    account: str
    marketplace: str
    currency: str
    items: list[HistoryItemOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next (older) page; null at the end")


# --- checkout -----------------------------------------------------------------------------


class ApplyBalanceIn(_In):
    account: Account
    marketplace: Marketplace
    order_ref: OrderRef = Field(description="The storefront's order number")
    order_total: Amount


class SettleIn(_In):
    amount: Amount | None = Field(default=None, description="Default: all that is still held")


class RefundIn(_In):
    amount: Amount


class CheckoutOut(_Out):
    checkout_id: int | None = Field(description="Null when the balance was zero and nothing was held")
    account: str
    marketplace: str
    currency: str
    order_ref: str
    order_total: int
    held: int
    remaining_to_pay: int
    captured: int
    released: int
    refunded: int
    outstanding: int = Field(description="Still held: neither captured nor released")


# --- ops ----------------------------------------------------------------------------------


class AddressIn(_In):
    email: Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=_PRINTABLE)] | None = None
    phone: Annotated[str, StringConstraints(min_length=2, max_length=20, pattern=_PRINTABLE)] | None = None


class PaymentIn(_In):
    outcome: Literal["confirmed", "declined"] = Field(
        description="confirmed: the payment cleared, the order is issued (or goes to its review); "
        "declined: it did not, the order is cancelled and the purchaser told"
    )


class HoldOut(_Out):
    order_id: int
    status: str
    payment: str | None
    review: str | None
    changed: bool = Field(description="false when the order already was as asked (a repeated answer)")


class CancelOut(_Out):
    order_id: int
    cancelled_deliveries: list[int]
    voided_cards: list[int]
    kept_cards: list[int]
    redeemed_cards: list[int]
    already_voided_cards: list[int]
    expired_cards: list[int]


class CardOut(_Out):
    card_id: int
    card: str = Field(description="The card as ops may see it: #id ••••-XXXX")
    marketplace: str
    currency: str
    amount: int = Field(description="minor units")
    status: str
    activated_at: dt.datetime | None


class SwapIn(_In):
    marketplace: Marketplace = Field(description="The marketplace of the new card")
    email: Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=_PRINTABLE)] | None = Field(
        default=None, description="Send the new card here; default: where the card's email gift went"
    )


class SwapOut(_Out):
    swap_id: int
    old_card_id: int
    new_card_id: int
    new_card: str = Field(description="The new card as ops see it: #id ••••-XXXX (its code goes by email)")
    from_marketplace: str
    to_marketplace: str
    from_amount: int = Field(description="minor units of from_currency")
    from_currency: str
    to_amount: int = Field(description="minor units of to_currency, rounded down")
    to_currency: str
    rate: str = Field(description="One major unit of from_currency in to_currency, as a decimal")
    rate_date: dt.date | None = Field(description="The date the rate applies from; null within one currency")
    transaction_id: int
    delivery: DeliveryOut = Field(description="The email that carries the new card to its holder")
    cancelled_deliveries: list[int]


class HealthOut(_Out):
    status: str
    database: str
    schema_revision: str | None


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
