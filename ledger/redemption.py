"""Redemption: a claim code's whole value moves from its card into a recipient account.

Order of work, chosen so that every answer is right under concurrency:

1. the code's shape and check character (typos are answered without a lookup);
2. the card, locked (``FOR UPDATE``; on SQLite the whole write is serialised);
3. the idempotency key: a replay returns the first result. It is read *after*
   the card lock, so a concurrent twin with the same key waits for the first and
   then sees its committed result instead of "already redeemed";
4. lockout: too many recent failures for this account (in any marketplace) or
   this client -> refused (before 1 and 2 answer, so a locked-out guesser learns
   nothing; after 3, so a retried success is still a success);
5. the card's state (voided, already redeemed, expired, wrong marketplace, not active);
6. the posting card -> wallet and the redemption row (unique per card).

Locks are taken card first, wallet second, everywhere in the ledger.

Only a lookup can be a guess: a well-formed code (check character right) that no
card has ("not valid") counts toward the lockout, once for the account and once
for the client. A mistyped code reveals nothing about any real code and does not
count, so clumsy typing never locks an honest customer out. The account scope is
the account owner across marketplaces: a guesser does not get a fresh allowance
per store. Counted failures are recorded in the caller's session before the
refusal is raised: the caller must commit them to keep the lockout counting.
:func:`redeem_code` does this for callers that own no session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from giftq.db import utcnow
from giftq.settings import get_settings
from ledger import idempotency
from ledger.accounts import check_owner, open_account
from ledger.codes import ClaimCode, get_vault
from ledger.errors import (
    AlreadyRedeemed,
    CardExpired,
    CardNotActive,
    CardVoided,
    CodeNotValid,
    RedemptionRefused,
    TooManyAttempts,
    WrongMarketplace,
)
from ledger.expiry import expired_on
from ledger.marketplaces import get_marketplace
from ledger.models import Account, AccountKind, Card, CardStatus, Redemption, RedemptionFailure
from ledger.posting import Leg, post


@dataclass(frozen=True, slots=True)
class RedemptionResult:
    card_id: int
    account: str
    marketplace: str
    amount: int
    currency: str
    balance_after: int
    transaction_id: int
    redeemed_at: str


def _scopes(account: str, client: str | None) -> list[tuple[str, int]]:
    settings = get_settings()
    scopes = [(f"account:{account}", settings.redeem_max_failures_per_account)]
    if client:
        scopes.append((f"client:{client}", settings.redeem_max_failures_per_client))
    return scopes


def lockout(session: Session, scopes: list[tuple[str, int]], now: dt.datetime) -> TooManyAttempts | None:
    """The refusal to give if too many attempts failed recently, else None."""
    window = dt.timedelta(seconds=get_settings().redeem_window_seconds)
    for scope, limit in scopes:
        count, oldest = session.execute(
            select(func.count(), func.min(RedemptionFailure.failed_at)).where(
                RedemptionFailure.scope == scope, RedemptionFailure.failed_at > now - window
            )
        ).one()
        if count >= limit:
            retry_after = max(1, int((oldest + window - now).total_seconds()) + 1)
            what = "this account" if scope.startswith("account:") else "this client"
            return TooManyAttempts(
                f"too many failed attempts from {what}; try again in {retry_after} s",
                retry_after=retry_after,
            )
    return None


def record_failure(session: Session, scopes: list[tuple[str, int]], reason: str, now: dt.datetime) -> None:
    session.execute(
        insert(RedemptionFailure), [{"scope": s, "reason": reason, "failed_at": now} for s, _ in scopes]
    )


def redeem(
    session: Session,
    code: str,
    *,
    account: str,
    marketplace: str,
    idempotency_key: str,
    client: str | None = None,
) -> RedemptionResult:
    """Move the card's whole value into ``account``'s balance in ``marketplace``, exactly once."""
    market = get_marketplace(marketplace)
    check_owner(account)
    now = utcnow()
    scopes = _scopes(account, client)
    locked = lockout(session, scopes, now)
    try:
        claim = ClaimCode.parse(code)
        lookup = get_vault().lookup_hash(claim.normalized)
        card = session.execute(
            select(Card)
            .where(Card.code_hash == lookup)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if card is None:
            raise CodeNotValid("this is not a valid gift card code")
    except RedemptionRefused as refusal:
        if locked is not None:
            raise locked from None  # a locked-out guesser learns nothing, and adds no count
        if refusal.counts_as_failure:
            record_failure(session, scopes, refusal.reason, now)
        raise

    request = {"card_id": card.id, "account": account, "marketplace": market.code}
    replay = idempotency.lookup(session, idempotency_key, "redeem", request)
    if replay is not None:
        return RedemptionResult(**replay)  # a retried success stays a success, lockout or not
    if locked is not None:
        raise locked

    if card.status == CardStatus.VOIDED:
        raise CardVoided(f"the card ending {card.code_last4} was cancelled")
    if card.status == CardStatus.REDEEMED:
        owner = session.execute(
            select(Account.owner)
            .join(Redemption, Redemption.wallet_account_id == Account.id)
            .where(Redemption.card_id == card.id)
        ).scalar_one()
        mine = owner == account and card.marketplace == market.code
        raise AlreadyRedeemed(
            "this card was already added to your balance"
            if mine
            else "this card was already redeemed to another account",
            to_this_account=mine,
        )
    if (day := expired_on(card, now)) is not None:
        raise CardExpired(f"this card expired on {day.isoformat()}", expired_on=day)
    if card.marketplace != market.code:
        raise WrongMarketplace(
            f"this card is for the {get_marketplace(card.marketplace).name} store; it cannot be used in "
            f"{market.name}",
            card_marketplace=card.marketplace,
        )
    if card.status == CardStatus.INACTIVE:
        raise CardNotActive("this card is not active yet; it becomes active when it ships")

    idempotency.claim(session, idempotency_key, "redeem", request)
    wallet_id = open_account(session, AccountKind.WALLET, market.code, account)
    txn_id = post(
        session,
        "redeem",
        [Leg(card.account_id, card.currency, -card.amount), Leg(wallet_id, card.currency, card.amount)],
        at=now,
    )
    session.add(
        Redemption(card_id=card.id, wallet_account_id=wallet_id, transaction_id=txn_id, redeemed_at=now)
    )
    card.status = CardStatus.REDEEMED.value
    card.redeemed_at = now
    session.flush()
    balance_after = session.execute(select(Account.balance).where(Account.id == wallet_id)).scalar_one()
    result = RedemptionResult(
        card_id=card.id,
        account=account,
        marketplace=market.code,
        amount=card.amount,
        currency=card.currency,
        balance_after=int(balance_after or 0),
        transaction_id=txn_id,
        redeemed_at=now.isoformat(),
    )
    idempotency.complete(session, idempotency_key, asdict(result))
    return result


def redeem_code(
    session_maker: sessionmaker[Session],
    code: str,
    *,
    account: str,
    marketplace: str,
    idempotency_key: str,
    client: str | None = None,
) -> RedemptionResult:
    """:func:`redeem` in a transaction of its own that keeps failure records on a refusal."""
    with session_maker() as session:
        session.begin()
        try:
            result = redeem(
                session,
                code,
                account=account,
                marketplace=marketplace,
                idempotency_key=idempotency_key,
                client=client,
            )
        except RedemptionRefused:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()
        return result
