"""Accounts: finding or opening them, locking them in a fixed order, and their balances."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from ledger.errors import InvalidRequest
from ledger.marketplaces import get_marketplace
from ledger.models import BOUNDED_KINDS, Account, AccountKind, Entry, LedgerTransaction
from ledger.sqlutil import insert_ignore

MAX_OWNER_LENGTH = 200


def check_owner(account: object) -> str:
    if not isinstance(account, str) or not account.strip():
        raise InvalidRequest("account must be a non-empty string (the storefront's customer reference)")
    if len(account) > MAX_OWNER_LENGTH:
        raise InvalidRequest(f"account is longer than {MAX_OWNER_LENGTH} characters")
    return account


def open_account(session: Session, kind: AccountKind, marketplace: str, owner: str | None) -> int:
    """Find or create the account; safe against a concurrent creator (ON CONFLICT DO NOTHING).

    ``owner`` None always creates a new account (cards and holds have one each).
    """
    market = get_marketplace(marketplace)
    values = {
        "kind": kind.value,
        "marketplace": market.code,
        "currency": market.currency,
        "owner": owner,
        "balance": None if kind not in BOUNDED_KINDS else 0,
        "created_at": utcnow(),
    }
    if owner is None:
        account = Account(**values)
        session.add(account)
        session.flush()
        return account.id
    insert_ignore(session, Account, values)
    account_id: int = session.execute(
        select(Account.id).where(
            Account.kind == kind.value, Account.marketplace == market.code, Account.owner == owner
        )
    ).scalar_one()
    return account_id


def find_wallet(session: Session, account: str, marketplace: str, *, lock: bool = False) -> Account | None:
    market = get_marketplace(marketplace)
    query = select(Account).where(
        Account.kind == AccountKind.WALLET.value,
        Account.marketplace == market.code,
        Account.owner == check_owner(account),
    )
    if lock:
        query = query.with_for_update()
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def funding_account(session: Session, marketplace: str) -> int:
    return open_account(session, AccountKind.FUNDING, marketplace, "")


def revenue_account(session: Session, marketplace: str) -> int:
    return open_account(session, AccountKind.REVENUE, marketplace, "")


def breakage_account(session: Session, marketplace: str) -> int:
    return open_account(session, AccountKind.BREAKAGE, marketplace, "")


def lock_account(session: Session, account_id: int) -> Account:
    return session.execute(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


@dataclass(frozen=True, slots=True)
class Balance:
    account: str
    marketplace: str
    currency: str
    amount: int
    at: dt.datetime | None


def balance(session: Session, *, account: str, marketplace: str, at: dt.datetime | None = None) -> Balance:
    """A recipient account's balance now, or as it stood at the instant ``at``."""
    market = get_marketplace(marketplace)
    wallet = find_wallet(session, account, market.code)
    if wallet is None:
        amount = 0
    elif at is None:
        amount = wallet.balance or 0
    else:
        amount = account_balance_at(session, wallet.id, at)
    return Balance(account, market.code, market.currency, amount, at)


def account_balance_at(session: Session, account_id: int, at: dt.datetime) -> int:
    total = session.execute(
        select(func.coalesce(func.sum(Entry.amount), 0)).where(
            Entry.account_id == account_id, Entry.posted_at <= at
        )
    ).scalar_one()
    return int(total)


@dataclass(frozen=True, slots=True)
class HistoryItem:
    entry_id: int
    transaction_id: int
    kind: str
    amount: int
    balance_after: int
    posted_at: dt.datetime


@dataclass(frozen=True, slots=True)
class HistoryPage:
    currency: str
    items: list[HistoryItem]
    next_cursor: str | None


def _encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{entry_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("e"):
            raise ValueError(cursor)
        return int(raw[1:])
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("cursor is not one this ledger handed out") from None


def history(
    session: Session, *, account: str, marketplace: str, cursor: str | None = None, limit: int = 50
) -> HistoryPage:
    """Entries of a recipient account, newest first, each with the balance after it."""
    if not 1 <= limit <= 500:
        raise InvalidRequest("limit must be between 1 and 500")
    market = get_marketplace(marketplace)
    wallet = find_wallet(session, account, market.code)
    if wallet is None:
        return HistoryPage(market.currency, [], None)
    query = (
        select(Entry.id, Entry.transaction_id, LedgerTransaction.kind, Entry.amount, Entry.posted_at)
        .join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)
        .where(Entry.account_id == wallet.id)
        .order_by(Entry.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(Entry.id < _decode_cursor(cursor))
    rows = session.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    items: list[HistoryItem] = []
    if page:
        running = int(
            session.execute(
                select(func.coalesce(func.sum(Entry.amount), 0)).where(
                    Entry.account_id == wallet.id, Entry.id <= page[0].id
                )
            ).scalar_one()
        )
        for row in page:
            items.append(
                HistoryItem(row.id, row.transaction_id, row.kind, row.amount, running, row.posted_at)
            )
            running -= row.amount
    return HistoryPage(market.currency, items, _encode_cursor(page[-1].id) if more else None)
