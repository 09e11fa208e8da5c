"""Posting: the one way money moves. A transaction of legs that sum to zero per currency.

Python checks what it can before the database does it again (see migration 0001):
amounts must be ``int`` (a float or Decimal is a bug, not money) and non-zero,
and the legs must balance per currency.

The two engines get the transaction row at different times: PostgreSQL inserts it
first and checks the sum at COMMIT (a deferred constraint trigger); SQLite has no
deferred triggers, so the entries go first and inserting the transaction row
checks them. Under SQLite's ``BEGIN IMMEDIATE`` this connection is the only
writer, so ``max(id) + 1`` is a safe id.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from giftq.db import is_sqlite, utcnow
from ledger.errors import InvalidRequest
from ledger.models import Entry, LedgerTransaction
from ledger.sqlutil import copy_many


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: int
    currency: str
    amount: int


def check_amount(amount: object, what: str = "amount") -> int:
    """Refuse anything that is not a positive integer count of minor units."""
    if type(amount) is not int:
        raise TypeError(f"{what} must be an int count of minor units, not {type(amount).__name__}")
    if amount <= 0:
        raise InvalidRequest(f"{what} must be positive, got {amount}")
    return amount


def post(session: Session, kind: str, legs: Sequence[Leg], *, at: dt.datetime | None = None) -> int:
    """Write one balanced transaction; returns its id."""
    if len(legs) < 2:
        raise InvalidRequest("a transaction needs at least two legs")
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        if type(leg.amount) is not int:
            raise TypeError(f"leg amounts are int minor units, not {type(leg.amount).__name__}")
        if leg.amount == 0:
            raise InvalidRequest("a leg of zero moves nothing")
        totals[leg.currency] += leg.amount
    unbalanced = {c: t for c, t in totals.items() if t}
    if unbalanced:
        raise InvalidRequest(f"transaction does not sum to zero: {unbalanced}")

    posted_at = at or utcnow()
    if is_sqlite(session):
        txn_id: int = session.execute(
            select(func.coalesce(func.max(LedgerTransaction.id), 0) + 1)
        ).scalar_one()
        session.execute(insert(Entry), _rows(txn_id, legs, posted_at))
        session.execute(insert(LedgerTransaction).values(id=txn_id, kind=kind, posted_at=posted_at))
    else:
        txn_id = session.execute(
            insert(LedgerTransaction).values(kind=kind, posted_at=posted_at).returning(LedgerTransaction.id)
        ).scalar_one()
        # One statement for all the legs, so that the statement-level trigger applying
        # them to balances runs once per posting: a list of rows would be an executemany,
        # one statement (and one trigger run) per leg, 5,000 for an order of 5,000 cards.
        copy_many(session, Entry, _rows(txn_id, legs, posted_at))
    return txn_id


def _rows(txn_id: int, legs: Sequence[Leg], posted_at: dt.datetime) -> list[dict[str, object]]:
    return [
        {
            "transaction_id": txn_id,
            "account_id": leg.account_id,
            "currency": leg.currency,
            "amount": leg.amount,
            "posted_at": posted_at,
        }
        for leg in legs
    ]
