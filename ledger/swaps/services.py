"""Swapping an unredeemed card into another marketplace, in one ledger transaction.

The old card is voided and a new one issued in the target marketplace at the rate in
effect on the swap's UTC date (:mod:`ledger.swaps.rates`), rounded down to the minor
unit. The money moves as one transaction of kind ``swap`` with four entries, summing to
zero in each of its two currencies::

    old card          -from_amount   (old currency)
    funding (old)     +from_amount   (old currency)
    funding (new)     -to_amount     (new currency)
    new card          +to_amount     (new currency)

A ``ledger_swaps`` row records both cards, both amounts, the rate and the date it applies
from. The new code comes back once, in :class:`SwapResult`, as from
:func:`ledger.issue_cards` (a replay of the same key opens it again, as issuance does).

Only an active card swaps: a redeemed, voided (or swapped) or expired card is refused with
:class:`InvalidState`, and so is a physical card not shipped yet (activate it first). The
new card keeps the old one's ``reference`` (the caller's pointer to its order line).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from giftq.settings import get_settings
from ledger import idempotency
from ledger.accounts import funding_account
from ledger.cards import MAX_CARD_AMOUNT, CardSpec, IssuedCard, create_cards, load_issued, lock_card
from ledger.codes import ClaimCode, get_vault
from ledger.errors import CodeNotValid, InvalidRequest, InvalidState, NotFound
from ledger.marketplaces import get_marketplace
from ledger.models import Card, CardStatus
from ledger.posting import Leg, post
from ledger.redemption import lockout, record_failure
from ledger.swaps.models import Swap
from ledger.swaps.rates import convert, rate_on, rate_text

OPERATION = "swap_card"


@dataclass(frozen=True, slots=True)
class SwapResult:
    swap_id: int
    old_card_id: int
    new_card: IssuedCard
    """The new card, with its code: hand it to the holder, never to a log."""
    from_marketplace: str
    to_marketplace: str
    from_currency: str
    to_currency: str
    from_amount: int
    to_amount: int
    rate: Decimal
    rate_date: dt.date | None
    """The date the rate applies from; None between marketplaces of one currency."""
    transaction_id: int
    swapped_at: dt.datetime


def swap_card(session: Session, card_id: int, *, to_marketplace: str, idempotency_key: str) -> SwapResult:
    """Void card ``card_id`` and issue its value as a card of ``to_marketplace`` (ops, by id)."""
    target = get_marketplace(to_marketplace)
    card = lock_card(session, card_id)
    return _swap(session, card, target.code, idempotency_key)


def swap_code(
    session: Session, code: str, *, to_marketplace: str, idempotency_key: str, client: str | None = None
) -> SwapResult:
    """:func:`swap_card` by the code, as its holder reads it out.

    A well-formed code that no card has counts toward ``client``'s lockout, as a
    redemption attempt does (the caller commits that record, as for a redemption).
    """
    target = get_marketplace(to_marketplace)
    now = utcnow()
    limit = get_settings().redeem_max_failures_per_client
    scopes = [(f"client:{client}", limit)] if client else []
    locked = lockout(session, scopes, now)
    if locked is not None:
        raise locked  # before the code is even parsed: a locked-out guesser learns nothing
    claim = ClaimCode.parse(code)
    card = session.execute(
        select(Card)
        .where(Card.code_hash == get_vault().lookup_hash(claim.normalized))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if card is None:
        refusal = CodeNotValid("this is not a valid gift card code")
        if scopes:
            record_failure(session, scopes, refusal.reason, now)
        raise refusal
    return _swap(session, card, target.code, idempotency_key)


def _swap(session: Session, card: Card, to_marketplace: str, idempotency_key: str) -> SwapResult:
    request = {"card_id": card.id, "to_marketplace": to_marketplace}
    replay = idempotency.lookup(session, idempotency_key, OPERATION, request)
    if replay is not None:
        return get_swap(session, int(replay["swap_id"]))
    last4 = card.code_last4
    if card.status != CardStatus.ACTIVE:
        hint = "; activate it first" if card.status == CardStatus.INACTIVE else ""
        raise InvalidState(
            f"card {card.id} (ending {last4}) is {card.status}; only an active card can be swapped{hint}"
        )
    if card.marketplace == to_marketplace:
        raise InvalidRequest(f"card {card.id} is a {to_marketplace} card already")
    source, target = get_marketplace(card.marketplace), get_marketplace(to_marketplace)
    now = utcnow()
    if source.currency == target.currency:
        rate, rate_date = Decimal(1), None
    else:
        found = rate_on(session, source.currency, target.currency, now.date())
        rate, rate_date = found.rate, found.effective_from
    to_amount = convert(card.amount, rate, source.currency, target.currency)
    if to_amount <= 0:
        raise InvalidRequest(f"card {card.id} is worth less than one minor unit of {target.currency}")
    if to_amount > MAX_CARD_AMOUNT:
        raise InvalidRequest(
            f"card {card.id} would be worth {to_amount}, above the ceiling {MAX_CARD_AMOUNT}"
        )

    idempotency.claim(session, idempotency_key, OPERATION, request)
    spec = CardSpec(target.code, to_amount, active=True, reference=card.reference, origin=card.origin)
    (new,) = create_cards(session, [spec], now)
    txn_id = post(
        session,
        "swap",
        [
            Leg(card.account_id, source.currency, -card.amount),
            Leg(funding_account(session, source.code), source.currency, card.amount),
            Leg(funding_account(session, target.code), target.currency, -to_amount),
            Leg(new.account_id, target.currency, to_amount),
        ],
        at=now,
    )
    card.status = CardStatus.VOIDED.value
    card.voided_at = now
    swap = Swap(
        old_card_id=card.id,
        new_card_id=new.card_id,
        transaction_id=txn_id,
        from_marketplace=source.code,
        to_marketplace=target.code,
        from_currency=source.currency,
        to_currency=target.currency,
        from_amount=card.amount,
        to_amount=to_amount,
        rate=rate_text(rate),
        rate_date=rate_date,
        swapped_at=now,
    )
    session.add(swap)
    session.flush()
    idempotency.complete(session, idempotency_key, {"swap_id": swap.id})
    return _result(swap, new.issued)


def get_swap(session: Session, swap_id: int) -> SwapResult:
    """A swap as recorded, with its new card's code opened (for the holder, as a replay)."""
    swap = session.get(Swap, swap_id)
    if swap is None:
        raise NotFound(f"no swap {swap_id}")
    (new_card,) = load_issued(session, [swap.new_card_id])
    return _result(swap, new_card)


def _result(swap: Swap, new_card: IssuedCard) -> SwapResult:
    return SwapResult(
        swap_id=swap.id,
        old_card_id=swap.old_card_id,
        new_card=new_card,
        from_marketplace=swap.from_marketplace,
        to_marketplace=swap.to_marketplace,
        from_currency=swap.from_currency,
        to_currency=swap.to_currency,
        from_amount=swap.from_amount,
        to_amount=swap.to_amount,
        rate=Decimal(swap.rate),
        rate_date=swap.rate_date,
        transaction_id=swap.transaction_id,
        swapped_at=swap.swapped_at,
    )
