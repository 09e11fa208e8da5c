"""Ledger test helpers.

- ``books``: a :class:`LedgerDriver` bound to the test's database (both engines):
  each call runs in a committed transaction of its own, as an entry point would.
- ``set_env``: change GIFTQ_* settings for one test (the settings are read once, so
  it resets the cache after changing the environment).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from giftq.settings import reset_settings
from ledger import (
    CardSpec,
    CheckoutState,
    IssuedCard,
    RedemptionResult,
    apply_balance,
    balance,
    issue_cards,
    reconcile,
    redeem,
)
from ledger.models import (
    Account,
    Card,
    Checkout,
    Entry,
    IdempotencyRecord,
    LedgerTransaction,
    Redemption,
    RedemptionFailure,
)

T = TypeVar("T")

COUNTED = {
    "transactions": LedgerTransaction,
    "entries": Entry,
    "cards": Card,
    "accounts": Account,
    "redemptions": Redemption,
    "checkouts": Checkout,
    "keys": IdempotencyRecord,
    "failures": RedemptionFailure,
}


class LedgerDriver:
    """Runs ledger calls the way a storefront would: one committed transaction per call."""

    _keys = itertools.count()

    def __init__(self, session_maker: sessionmaker[OrmSession]) -> None:
        self.Session = session_maker

    def key(self, what: str = "k") -> str:
        return f"{what}-{next(self._keys)}"

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.Session.begin() as session:
            return fn(session, *args, **kwargs)

    def issue(
        self, *amounts: int, marketplace: str = "US", active: bool = True, key: str | None = None
    ) -> list[IssuedCard]:
        specs = [CardSpec(marketplace, amount, active=active) for amount in amounts]
        return self.run(issue_cards, specs, idempotency_key=key or self.key("issue"))

    def issue_one(self, amount: int = 5000, marketplace: str = "US", active: bool = True) -> IssuedCard:
        return self.issue(amount, marketplace=marketplace, active=active)[0]

    def redeem(
        self,
        code: str,
        account: str = "alice",
        marketplace: str = "US",
        key: str | None = None,
        client: str | None = None,
    ) -> RedemptionResult:
        return self.run(
            redeem,
            code,
            account=account,
            marketplace=marketplace,
            idempotency_key=key or self.key("redeem"),
            client=client,
        )

    def fund(self, account: str, amount: int, marketplace: str = "US") -> RedemptionResult:
        """Give ``account`` a balance of ``amount`` more, by issuing and redeeming a card."""
        card = self.issue_one(amount, marketplace)
        return self.redeem(card.code.reveal(), account, marketplace)

    def apply(
        self, account: str, total: int, marketplace: str = "US", order: str = "order-1"
    ) -> CheckoutState:
        return self.run(
            apply_balance,
            account=account,
            marketplace=marketplace,
            order_ref=order,
            order_total=total,
            idempotency_key=self.key("apply"),
        )

    def balance(self, account: str, marketplace: str = "US") -> int:
        return self.run(balance, account=account, marketplace=marketplace).amount

    def counts(self) -> dict[str, int]:
        with self.Session() as session:
            return {
                name: session.execute(select(func.count()).select_from(model)).scalar_one()
                for name, model in COUNTED.items()
            }

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.Session.begin() as session:
            result = session.execute(text(statement), params)
            return list(result) if result.returns_rows else []

    def reconciled(self) -> None:
        with self.Session() as session:
            report = reconcile(session)
        assert report.ok, report.problems


@pytest.fixture
def books(Session: sessionmaker[OrmSession]) -> LedgerDriver:
    return LedgerDriver(Session)


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def set_env(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"GIFTQ_{name.upper()}", str(value))
        reset_settings()

    yield set_env
    reset_settings()
