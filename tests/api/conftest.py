"""Fixtures of the HTTP API tests.

- ``api``: an :class:`ApiDriver` around the app (Starlette's TestClient, in process) on the
  test's database, with helpers to make keys, issue cards and count rows;
- the in-process broker (``memory://``) for every test, as in tests/delivery: placing an
  order publishes after commit and nothing here runs a worker.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from api.keys import create_key
from api.models import ApiKey, IdempotentResponse
from delivery.models import Delivery, Order, OrderLine
from delivery.worker.celery_app import reset_app
from giftq.settings import reset_settings
from ledger import CardSpec, IssuedCard, issue_cards
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

COUNTED = {
    "orders": Order,
    "order_lines": OrderLine,
    "deliveries": Delivery,
    "transactions": LedgerTransaction,
    "entries": Entry,
    "cards": Card,
    "accounts": Account,
    "redemptions": Redemption,
    "checkouts": Checkout,
    "ledger_keys": IdempotencyRecord,
    "failures": RedemptionFailure,
    "api_keys": ApiKey,
    "api_answers": IdempotentResponse,
}

BASE_ORDER: dict[str, Any] = {
    "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
    "reference": "SHOP-1001",
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "design": "birthday",
            "message": "Happy birthday!",
            "recipient": {"name": "Robin Receiver", "email": "robin@example.com"},
        }
    ],
}


@pytest.fixture(autouse=True)
def _memory_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GIFTQ_BROKER_URL", "memory://")
    reset_settings()
    reset_app()
    yield
    reset_app()


class ApiDriver:
    """The app in process, and the test's view of its database."""

    _keys = itertools.count()

    def __init__(self, session_maker: sessionmaker[OrmSession]) -> None:
        self.Session = session_maker
        self.client = TestClient(create_app(), base_url="http://testserver")

    def key(self, *scopes: str, name: str = "test shop") -> str:
        """A new API key's token with ``scopes`` (default: all of them)."""
        with self.Session.begin() as session:
            return create_key(
                session, name=name, scopes=scopes or ("orders", "redeem", "checkout", "ops")
            ).token

    def headers(self, token: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        headers["Idempotency-Key"] = key or f"k-{next(self._keys)}"
        return headers

    def issue(self, *amounts: int, marketplace: str = "US", active: bool = True) -> list[IssuedCard]:
        with self.Session.begin() as session:
            return issue_cards(
                session,
                [CardSpec(marketplace, a, active=active) for a in amounts],
                idempotency_key=f"test-issue-{next(self._keys)}",
            )

    def counts(self) -> dict[str, int]:
        with self.Session() as session:
            return {
                name: session.execute(select(func.count()).select_from(model)).scalar_one()
                for name, model in COUNTED.items()
            }


@pytest.fixture
def api(Session: sessionmaker[OrmSession]) -> Iterator[ApiDriver]:
    driver = ApiDriver(Session)
    with driver.client:
        yield driver


@pytest.fixture
def order_body() -> dict[str, Any]:
    import copy

    return copy.deepcopy(BASE_ORDER)
