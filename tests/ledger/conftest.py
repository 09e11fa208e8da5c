"""Ledger test helpers.

- ``database_url`` (overrides the shared one for tests/ledger): the same contract, an
  empty migrated database per test on each engine, but on PostgreSQL one database is
  emptied between tests instead of a new one created from the template. CREATE DATABASE
  costs 0.3 to 0.9 s on the 2-core CI machine and this suite has over a hundred
  PostgreSQL tests; emptying the tables costs a few tens of milliseconds. A test that changes
  the schema asks for ``postgresql-fresh`` and gets a database of its own.
- ``books``: a :class:`LedgerDriver` bound to the test's database (both engines):
  each call runs in a committed transaction of its own, as an entry point would.
- ``all_at_once(n, work)``: ``work(i)`` in ``n`` threads released together by a barrier (races).
- ``set_env``: change GIFTQ_* settings for one test (the settings are read once, so
  it resets the cache after changing the environment).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

from giftq import db as giftq_db
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
        return f"books-{what}-{next(self._keys)}"

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


def all_at_once(workers: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for every worker in its own thread, released together."""
    barrier = threading.Barrier(workers)

    def start(i: int) -> T:
        barrier.wait(timeout=60)
        return work(i)

    with ThreadPoolExecutor(max_workers=workers) as executor:
        return list(executor.map(start, range(workers)))


# --- databases ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _ledger_pg_database(_pg_admin: Engine | None, _pg_template: str | None) -> Iterator[str | None]:
    """One database for the PostgreSQL tests of this directory, emptied before each."""
    if _pg_admin is None or _pg_template is None:
        yield None
        return
    name = f"giftq_ledger_{os.getpid()}"
    with _pg_admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"'))
        # Durability across a server crash is not under test; waiting for each commit's
        # WAL flush only makes the suite slower (locks and constraints behave the same).
        c.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = make_url(_pg_admin.url).set(database=name, drivername="postgresql+psycopg")
    yield url.render_as_string(hide_password=False)
    with _pg_admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _empty(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as c:
            # A connection left open by the previous test would hold locks.
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            tables = c.execute(
                text(
                    "SELECT quote_ident(tablename) FROM pg_tables"
                    " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ).scalars()
            sequences = c.execute(
                text("SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'")
            ).scalars()
            # The append-only triggers refuse DELETE; replica mode skips triggers (foreign
            # keys included, so the order does not matter). DELETE, not TRUNCATE: on tables
            # this small it is three times faster.
            c.execute(text("SET LOCAL session_replication_role = replica"))
            for table in list(tables):
                c.execute(text(f"DELETE FROM {table}"))
            for sequence in list(sequences):
                c.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
    finally:
        engine.dispose()


@pytest.fixture
def ledger_pg_url(_ledger_pg_database: str | None, request: pytest.FixtureRequest) -> str:
    if _ledger_pg_database is None:
        return str(request.getfixturevalue("pg_url"))  # skips, or fails under REQUIRE_SERVICES
    _empty(_ledger_pg_database)
    return _ledger_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    fixture = {"sqlite": "sqlite_url", "postgresql": "ledger_pg_url", "postgresql-fresh": "pg_url"}
    url: str = request.getfixturevalue(fixture[request.param])
    monkeypatch.setenv("GIFTQ_DATABASE_URL", url)
    reset_settings()
    giftq_db.reset_engine()
    return url


# --- drivers ------------------------------------------------------------------------------


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
