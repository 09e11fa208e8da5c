"""Spending a balance at checkout: hold (wallet -> hold), then capture (hold -> revenue)
or release (hold -> wallet); later, refund (revenue -> wallet).

Each hold has its own hold account, so its balance is exactly what is still
reserved. The checkout row's CHECKs keep ``captured + released <= held`` and
``refunded <= captured`` in the database. Lock order: checkout row, then wallet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from ledger import idempotency
from ledger.accounts import check_owner, find_wallet, open_account, revenue_account
from ledger.errors import InsufficientFunds, InvalidRequest, NotFound
from ledger.marketplaces import get_marketplace
from ledger.models import Account, AccountKind, Checkout
from ledger.posting import Leg, check_amount, post


@dataclass(frozen=True, slots=True)
class CheckoutState:
    checkout_id: int | None
    """None when the balance was zero and nothing was held."""
    account: str
    marketplace: str
    currency: str
    order_ref: str
    order_total: int
    held: int
    remaining_to_pay: int
    """What the balance did not cover: the storefront collects it another way."""
    captured: int = 0
    released: int = 0
    refunded: int = 0

    @property
    def outstanding(self) -> int:
        """Still held: neither captured nor released."""
        return self.held - self.captured - self.released


def _state(checkout: Checkout, account: str) -> CheckoutState:
    return CheckoutState(
        checkout.id,
        account,
        checkout.marketplace,
        checkout.currency,
        checkout.order_ref,
        checkout.order_total,
        checkout.held,
        checkout.order_total - checkout.held,
        checkout.captured,
        checkout.released,
        checkout.refunded,
    )


def apply_balance(
    session: Session,
    *,
    account: str,
    marketplace: str,
    order_ref: str,
    order_total: int,
    idempotency_key: str,
) -> CheckoutState:
    """Hold up to ``order_total`` of the account's balance for a storefront order."""
    market = get_marketplace(marketplace)
    check_owner(account)
    check_amount(order_total, "order_total")
    if not order_ref or len(order_ref) > 200:
        raise InvalidRequest("order_ref must be 1 to 200 characters")
    request = {"account": account, "marketplace": market.code, "order_ref": order_ref, "total": order_total}
    wallet = find_wallet(session, account, market.code, lock=True)
    replay = idempotency.claim(session, idempotency_key, "apply_balance", request)
    if replay is not None:
        return CheckoutState(**replay)
    available = (wallet.balance or 0) if wallet is not None else 0
    held = min(available, order_total)
    if wallet is None or held == 0:
        state = CheckoutState(
            None, account, market.code, market.currency, order_ref, order_total, 0, order_total
        )
    else:
        now = utcnow()
        hold_id = open_account(session, AccountKind.HOLD, market.code, None)
        post(
            session,
            "hold",
            [Leg(wallet.id, market.currency, -held), Leg(hold_id, market.currency, held)],
            at=now,
        )
        checkout = Checkout(
            wallet_account_id=wallet.id,
            hold_account_id=hold_id,
            marketplace=market.code,
            currency=market.currency,
            order_ref=order_ref,
            order_total=order_total,
            held=held,
            captured=0,
            released=0,
            refunded=0,
            created_at=now,
        )
        session.add(checkout)
        session.flush()
        state = _state(checkout, account)
    idempotency.complete(session, idempotency_key, _json(state))
    return state


def _json(state: CheckoutState) -> dict[str, object]:
    return asdict(state)


def _lock_checkout(session: Session, checkout_id: int) -> tuple[Checkout, str]:
    checkout = session.execute(
        select(Checkout)
        .where(Checkout.id == checkout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if checkout is None:
        raise NotFound(f"no checkout {checkout_id}")
    owner = session.execute(
        select(Account.owner).where(Account.id == checkout.wallet_account_id)
    ).scalar_one()
    return checkout, str(owner)


def _settle(
    session: Session, operation: str, checkout_id: int, amount: int | None, idempotency_key: str
) -> CheckoutState:
    checkout, owner = _lock_checkout(session, checkout_id)
    request = {"checkout_id": checkout_id, "amount": amount}
    replay = idempotency.lookup(session, idempotency_key, operation, request)
    if replay is not None:
        return CheckoutState(**replay)
    outstanding = checkout.held - checkout.captured - checkout.released
    if amount is None:
        amount = outstanding
    else:
        check_amount(amount)
    if amount == 0 or amount > outstanding:
        raise InsufficientFunds(
            f"checkout {checkout_id} has {outstanding} {checkout.currency} held; cannot {operation} {amount}"
        )
    idempotency.claim(session, idempotency_key, operation, request)
    if operation == "capture":
        target = revenue_account(session, checkout.marketplace)
        checkout.captured += amount
    else:
        target = checkout.wallet_account_id
        checkout.released += amount
    post(
        session,
        operation,
        [Leg(checkout.hold_account_id, checkout.currency, -amount), Leg(target, checkout.currency, amount)],
    )
    session.flush()
    state = _state(checkout, owner)
    idempotency.complete(session, idempotency_key, _json(state))
    return state


def capture(
    session: Session, checkout_id: int, *, amount: int | None = None, idempotency_key: str
) -> CheckoutState:
    """Take ``amount`` (default: all still held) of the hold as revenue."""
    return _settle(session, "capture", checkout_id, amount, idempotency_key)


def release(
    session: Session, checkout_id: int, *, amount: int | None = None, idempotency_key: str
) -> CheckoutState:
    """Give ``amount`` (default: all still held) back to the account's balance."""
    return _settle(session, "release", checkout_id, amount, idempotency_key)


def refund(session: Session, checkout_id: int, *, amount: int, idempotency_key: str) -> CheckoutState:
    """Put captured money back into the balance; never more than was captured for the order."""
    check_amount(amount)
    checkout, owner = _lock_checkout(session, checkout_id)
    request = {"checkout_id": checkout_id, "amount": amount}
    replay = idempotency.lookup(session, idempotency_key, "refund", request)
    if replay is not None:
        return CheckoutState(**replay)
    refundable = checkout.captured - checkout.refunded
    if amount > refundable:
        raise InsufficientFunds(
            f"checkout {checkout_id} has {refundable} {checkout.currency} captured and not refunded; "
            f"cannot refund {amount}"
        )
    idempotency.claim(session, idempotency_key, "refund", request)
    post(
        session,
        "refund",
        [
            Leg(revenue_account(session, checkout.marketplace), checkout.currency, -amount),
            Leg(checkout.wallet_account_id, checkout.currency, amount),
        ],
    )
    checkout.refunded += amount
    session.flush()
    state = _state(checkout, owner)
    idempotency.complete(session, idempotency_key, _json(state))
    return state
