"""Reconciliation: where every unit of money is, per currency, and what is broken.

Outstanding liability is what the business owes: unredeemed card value, wallet
balances and open holds. Revenue is what was spent at the store. Breakage is the
value of cards that expired (less what was reinstated). Funding is the (negative)
mirror of all money taken in for cards. Double entry makes the six sum to zero; the
report says so, and lists any invariant that does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.models import FINAL_CARD_STATUSES, Account, AccountKind, Card, CardStatus, Checkout, Entry


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    card: int
    wallet: int
    hold: int
    revenue: int
    funding: int
    breakage: int = 0

    @property
    def outstanding_liability(self) -> int:
        return self.card + self.wallet + self.hold

    @property
    def total(self) -> int:
        return self.card + self.wallet + self.hold + self.revenue + self.funding + self.breakage


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    currencies: list[CurrencyTotals]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.total == 0 for c in self.currencies)


def reconcile(session: Session) -> ReconciliationReport:
    sums = session.execute(
        select(Account.currency, Account.kind, func.sum(Entry.amount))
        .join(Entry, Entry.account_id == Account.id)
        .group_by(Account.currency, Account.kind)
    ).all()
    by_currency: dict[str, dict[str, int]] = {}
    for currency, kind, total in sums:
        by_currency.setdefault(currency, {k.value: 0 for k in AccountKind})[kind] = int(total)
    totals = [CurrencyTotals(c, **kinds) for c, kinds in sorted(by_currency.items())]
    problems = [f"{t.currency}: accounts sum to {t.total}, not zero" for t in totals if t.total]
    problems += _unbalanced_transactions(session)
    problems += _stale_balances(session)
    problems += _card_balances(session)
    problems += _checkout_balances(session)
    return ReconciliationReport(totals, problems)


def _unbalanced_transactions(session: Session) -> list[str]:
    rows = session.execute(
        select(Entry.transaction_id, Entry.currency, func.sum(Entry.amount))
        .group_by(Entry.transaction_id, Entry.currency)
        .having(func.sum(Entry.amount) != 0)
        .limit(100)
    ).all()
    return [f"transaction {t} does not sum to zero in {c} ({s})" for t, c, s in rows]


def _stale_balances(session: Session) -> list[str]:
    entry_sums = (
        select(Entry.account_id, func.sum(Entry.amount).label("total")).group_by(Entry.account_id).subquery()
    )
    rows = session.execute(
        select(Account.id, Account.kind, Account.balance, func.coalesce(entry_sums.c.total, 0))
        .outerjoin(entry_sums, entry_sums.c.account_id == Account.id)
        .where(Account.balance.is_not(None), Account.balance != func.coalesce(entry_sums.c.total, 0))
        .limit(100)
    ).all()
    problems = [f"{k} account {a}: stored balance {b} but entries sum to {s}" for a, k, b, s in rows]
    negative = session.execute(select(Account.id, Account.kind).where(Account.balance < 0).limit(100)).all()
    problems += [f"{k} account {a} is below zero" for a, k in negative]
    return problems


def _card_balances(session: Session) -> list[str]:
    rows = session.execute(
        select(Card.id, Card.status, Card.amount, Account.balance)
        .join(Account, Account.id == Card.account_id)
        .where(
            (
                Card.status.in_([CardStatus.ACTIVE.value, CardStatus.INACTIVE.value])
                & (Account.balance != Card.amount)
            )
            | (Card.status.in_(sorted(FINAL_CARD_STATUSES)) & (Account.balance != 0))
        )
        .limit(100)
    ).all()
    return [f"card {c} is {s} with face value {a} but its account holds {b}" for c, s, a, b in rows]


def _checkout_balances(session: Session) -> list[str]:
    rows = session.execute(
        select(Checkout.id, Checkout.held, Checkout.captured, Checkout.released, Account.balance)
        .join(Account, Account.id == Checkout.hold_account_id)
        .where(Account.balance != Checkout.held - Checkout.captured - Checkout.released)
        .limit(100)
    ).all()
    return [f"checkout {c}: hold account holds {b}, expected {h - cap - rel}" for c, h, cap, rel, b in rows]
