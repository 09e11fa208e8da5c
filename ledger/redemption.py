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

On PostgreSQL steps 2 to 6 are one statement, the function ``giftq_redeem``
(:mod:`ledger.redemption_pg`, migration 0012): one round trip instead of about a dozen.
SQLite runs them here, statement by statement. Both answer through the same mapping
(:func:`_refusal`, :func:`_too_many`), so both give the same results and errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from giftq.db import is_sqlite, utcnow
from giftq.settings import get_settings
from ledger import idempotency
from ledger.accounts import check_owner, open_account
from ledger.codes import ClaimCode, get_vault
from ledger.errors import (
    AlreadyRedeemed,
    CardExpired,
    CardNotActive,
    CardVoided,
    CodeMistyped,
    CodeNotValid,
    RedemptionRefused,
    TooManyAttempts,
    WrongMarketplace,
)
from ledger.expiry import expired_day, expired_on
from ledger.marketplaces import Marketplace, get_marketplace
from ledger.models import Account, AccountKind, Card, CardStatus, Redemption, RedemptionFailure
from ledger.posting import Leg, post
from ledger.redemption_pg import call_redeem


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


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=get_settings().redeem_window_seconds)


def _too_many(scope: str, oldest: dt.datetime, now: dt.datetime) -> TooManyAttempts:
    retry_after = max(1, int((oldest + _window() - now).total_seconds()) + 1)
    what = "this account" if scope.startswith("account:") else "this client"
    return TooManyAttempts(
        f"too many failed attempts from {what}; try again in {retry_after} s", retry_after=retry_after
    )


def lockout(session: Session, scopes: list[tuple[str, int]], now: dt.datetime) -> TooManyAttempts | None:
    """The refusal to give if too many attempts failed recently, else None."""
    for scope, limit in scopes:
        count, oldest = session.execute(
            select(func.count(), func.min(RedemptionFailure.failed_at)).where(
                RedemptionFailure.scope == scope, RedemptionFailure.failed_at > now - _window()
            )
        ).one()
        if count >= limit:
            return _too_many(scope, oldest, now)
    return None


def record_failure(session: Session, scopes: list[tuple[str, int]], reason: str, now: dt.datetime) -> None:
    session.execute(
        insert(RedemptionFailure), [{"scope": s, "reason": reason, "failed_at": now} for s, _ in scopes]
    )


def _refusal(
    status: str,
    *,
    card_marketplace: str,
    last4: str,
    owner: str | None,
    account: str,
    market: Marketplace,
    expired: dt.date | None,
) -> RedemptionRefused | None:
    """What a card in this state answers to a redemption into ``account`` in ``market``; None: go on.

    The one mapping of card states to refusals, for both engines. ``owner`` is the owner
    of the account a redeemed card went to; ``expired`` the day an expired card (or one
    past its expiry that the expiry job has not reached yet) stopped being valid.
    """
    if status == CardStatus.VOIDED:
        return CardVoided(f"the card ending {last4} was cancelled")
    if status == CardStatus.REDEEMED:
        mine = owner == account and card_marketplace == market.code
        return AlreadyRedeemed(
            "this card was already added to your balance"
            if mine
            else "this card was already redeemed to another account",
            to_this_account=mine,
        )
    if expired is not None:
        return CardExpired(f"this card expired on {expired.isoformat()}", expired_on=expired)
    if card_marketplace != market.code:
        return WrongMarketplace(
            f"this card is for the {get_marketplace(card_marketplace).name} store; it cannot be used in "
            f"{market.name}",
            card_marketplace=card_marketplace,
        )
    if status == CardStatus.INACTIVE:
        return CardNotActive("this card is not active yet; it becomes active when it ships")
    if status != CardStatus.ACTIVE:
        return CardNotActive(f"this card cannot be redeemed ({status})")
    return None


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One redemption attempt, checked: what both engines' paths work from."""

    lookup: bytes
    """The code's lookup hash (the code itself goes no further)."""
    account: str
    market: Marketplace
    key: str
    scopes: list[tuple[str, int]]
    now: dt.datetime

    def request(self) -> dict[str, str]:
        """What the idempotency key is bound to: the code (by its lookup hash), account, market."""
        return {"code_hash": self.lookup.hex(), "account": self.account, "marketplace": self.market.code}

    def earlier_request(self, card_id: int) -> dict[str, object]:
        """The same, as keys stored before redemptions ran in one statement named it (by card id)."""
        return {"card_id": card_id, "account": self.account, "marketplace": self.market.code}


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
    idempotency.check_key(idempotency_key)
    now = utcnow()
    scopes = _scopes(account, client)
    try:
        claim = ClaimCode.parse(code)
    except CodeMistyped:
        locked = lockout(session, scopes, now)
        if locked is not None:
            raise locked from None  # a locked-out guesser learns nothing
        raise
    attempt = _Attempt(
        get_vault().lookup_hash(claim.normalized), account, market, idempotency_key, scopes, now
    )
    if is_sqlite(session):
        return _redeem_here(session, attempt)
    return _redeem_in_database(session, attempt)


def _redeem_in_database(session: Session, attempt: _Attempt) -> RedemptionResult:
    """PostgreSQL: the steps below in one statement (``giftq_redeem``), its answer mapped here."""
    account, market, now = attempt.account, attempt.market, attempt.now
    answer = call_redeem(
        session,
        code_hash=attempt.lookup,
        account=account,
        marketplace=market.code,
        currency=market.currency,
        key=attempt.key,
        digest=idempotency.digest("redeem", attempt.request()),
        scopes=attempt.scopes,
        failure_reason=CodeNotValid.reason,
        now=now,
        window=_window(),
    )
    outcome = answer.outcome
    if outcome == "redeemed":
        assert answer.card_id is not None and answer.amount is not None and answer.currency is not None
        assert answer.transaction_id is not None and answer.balance_after is not None
        _forget(session, Card, answer.card_id)
        _forget(session, Account, answer.wallet_id)
        return RedemptionResult(
            card_id=answer.card_id,
            account=account,
            marketplace=market.code,
            amount=answer.amount,
            currency=answer.currency,
            balance_after=answer.balance_after,
            transaction_id=answer.transaction_id,
            redeemed_at=now.isoformat(),
        )
    if outcome == "locked":
        assert answer.locked_scope is not None and answer.locked_since is not None
        raise _too_many(answer.locked_scope, answer.locked_since, now)
    if outcome == "not_valid":
        raise CodeNotValid("this is not a valid gift card code")
    if outcome == "seen":
        assert answer.card_id is not None
        assert answer.stored_operation is not None and answer.stored_digest is not None
        replay = idempotency.first_result(
            attempt.key,
            "redeem",
            attempt.request(),
            stored_operation=answer.stored_operation,
            stored_digest=answer.stored_digest,
            stored_result=answer.stored_result,
            earlier_form=attempt.earlier_request(answer.card_id),
        )
        return RedemptionResult(**replay)  # a retried success stays a success, lockout or not
    assert outcome == "refused", outcome
    assert answer.status is not None and answer.card_marketplace is not None and answer.last4 is not None
    refusal = _refusal(
        answer.status,
        card_marketplace=answer.card_marketplace,
        last4=answer.last4,
        owner=answer.owner,
        account=account,
        market=market,
        expired=expired_day(answer.status, answer.expires_at, now),
    )
    assert refusal is not None, "the function refused a card the ledger would redeem"
    raise refusal


def _forget(session: Session, model: type[Card] | type[Account], row_id: int | None) -> None:
    """Expire the caller's copy of a row the function changed, if the session holds one."""
    if row_id is None or not session.identity_map:
        return
    held = session.identity_map.get(session.identity_key(model, row_id))
    if held is not None:
        session.expire(held)


def _redeem_here(session: Session, attempt: _Attempt) -> RedemptionResult:
    """SQLite: the steps of the module docstring, statement by statement."""
    account, market, key, scopes, now = (
        attempt.account,
        attempt.market,
        attempt.key,
        attempt.scopes,
        attempt.now,
    )
    locked = lockout(session, scopes, now)
    card = session.execute(
        select(Card)
        .where(Card.code_hash == attempt.lookup)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if card is None:
        if locked is not None:
            raise locked  # a locked-out guesser learns nothing, and adds no count
        record_failure(session, scopes, CodeNotValid.reason, now)
        raise CodeNotValid("this is not a valid gift card code")

    request = attempt.request()
    replay = idempotency.lookup(
        session, key, "redeem", request, earlier_form=attempt.earlier_request(card.id)
    )
    if replay is not None:
        return RedemptionResult(**replay)  # a retried success stays a success, lockout or not
    if locked is not None:
        raise locked

    owner = None
    if card.status == CardStatus.REDEEMED:
        owner = session.execute(
            select(Account.owner)
            .join(Redemption, Redemption.wallet_account_id == Account.id)
            .where(Redemption.card_id == card.id)
        ).scalar_one()
    refusal = _refusal(
        card.status,
        card_marketplace=card.marketplace,
        last4=card.code_last4,
        owner=owner,
        account=account,
        market=market,
        expired=expired_on(card, now),
    )
    if refusal is not None:
        raise refusal

    idempotency.claim(session, key, "redeem", request)
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
    _forget(session, Account, wallet_id)  # the entries trigger changed its balance
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
    idempotency.complete(session, key, asdict(result))
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
    """:func:`redeem` in a transaction of its own that keeps failure records on a refusal.

    On PostgreSQL the redemption is one statement, so it runs as its own transaction
    (autocommit): one round trip, with no BEGIN and COMMIT around it. What the statement
    wrote commits with it, a refusal's failure records included, exactly as below.
    """
    with session_maker() as session:
        if not is_sqlite(session):
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return redeem(
                session,
                code,
                account=account,
                marketplace=marketplace,
                idempotency_key=idempotency_key,
                client=client,
            )
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
