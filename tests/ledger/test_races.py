"""Races: many threads, one engine, a session each, all let loose at once by a barrier.

The ledger does not ask callers to retry on deadlock or serialization failure, so
these tests do not retry: any such error is a failure (locks are meant to be taken
in a fixed order: card, then wallet; checkout, then wallet).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from giftq.db import make_engine
from ledger import (
    CardSpec,
    apply_balance,
    balance,
    capture,
    history,
    issue_cards,
    reconcile,
    redeem,
    redeem_code,
    refund,
    release,
)
from ledger.errors import AlreadyRedeemed
from ledger.models import Account, Card, LedgerTransaction, Redemption
from tests.ledger.conftest import all_at_once

pytestmark = pytest.mark.timeout(180)
T = TypeVar("T")

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def pool(database_url: str) -> Iterator[Callable[[int], sessionmaker[Session]]]:
    """``pool(n)``: a sessionmaker on an engine with room for ``n`` concurrent sessions."""
    engines = []

    def make(n: int) -> sessionmaker[Session]:
        engine = make_engine(database_url, pool_size=n, max_overflow=0, pool_timeout=60)
        engines.append(engine)
        return sessionmaker(engine, expire_on_commit=False)

    yield make
    for engine in engines:
        engine.dispose()


def in_transaction(
    session_maker: sessionmaker[Session], fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    with session_maker.begin() as session:
        return fn(session, *args, **kwargs)


def check_books(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session:
        report = reconcile(session)
        negative = session.execute(select(func.count()).where(Account.balance < 0)).scalar_one()
    assert report.ok, report.problems
    assert negative == 0


@postgresql_only
def test_50_workers_race_for_the_same_20_codes(books, pool) -> None:
    cards = books.issue(*range(100, 120))
    session_maker = pool(50)

    def work(worker: int) -> list[tuple[str, int]]:
        order = list(cards)
        random.Random(worker).shuffle(order)
        outcomes = []
        for card in order:
            try:
                redeem_code(
                    session_maker,
                    card.code.reveal(),
                    account=f"w{worker}",
                    marketplace="US",
                    idempotency_key=f"w{worker}-{card.card_id}",
                )
            except AlreadyRedeemed as refusal:
                assert refusal.to_this_account is False
                outcomes.append(("already_redeemed", card.card_id))
            else:
                outcomes.append(("redeemed", card.card_id))
        return outcomes

    results = all_at_once(50, work)
    outcomes = Counter(kind for worker in results for kind, _ in worker)
    assert outcomes == {"redeemed": 20, "already_redeemed": 50 * 20 - 20}
    winners = {
        card_id: w for w, worker in enumerate(results) for kind, card_id in worker if kind == "redeemed"
    }
    assert sorted(winners) == sorted(c.card_id for c in cards)
    with session_maker() as session:
        assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == 20
        statuses = session.execute(select(Card.status)).scalars().all()
        wallets = {
            owner: bal
            for owner, bal in session.execute(
                select(Account.owner, Account.balance).where(Account.kind == "wallet")
            ).all()
        }
    assert set(statuses) == {"redeemed"}
    expected = Counter()
    for card in cards:
        expected[f"w{winners[card.card_id]}"] += card.amount
    assert {o: b for o, b in wallets.items() if b} == dict(expected)
    check_books(session_maker)


@postgresql_only
def test_64_workers_spend_one_wallet(books, pool) -> None:
    order_total, full_orders, remainder = 300, 32, 150
    books.fund("shared", 4000)
    books.fund("shared", full_orders * order_total + remainder - 4000)
    session_maker = pool(64)

    def work(worker: int) -> tuple[int, int]:
        state = in_transaction(
            session_maker,
            apply_balance,
            account="shared",
            marketplace="US",
            order_ref=f"order-{worker}",
            order_total=order_total,
            idempotency_key=f"apply-{worker}",
        )
        assert state.held + state.remaining_to_pay == order_total
        if state.checkout_id is not None:
            captured = in_transaction(
                session_maker, capture, state.checkout_id, idempotency_key=f"capture-{worker}"
            )
            assert captured.captured == state.held
        return state.held, state.remaining_to_pay

    results = all_at_once(64, work)
    assert Counter(held for held, _ in results) == {order_total: full_orders, remainder: 1, 0: 31}
    assert books.balance("shared") == 0
    with session_maker() as session:
        usd = reconcile(session).currencies[0]
        steps, cursor = [], None
        while True:
            page = history(session, account="shared", marketplace="US", cursor=cursor, limit=500)
            steps += page.items
            if (cursor := page.next_cursor) is None:
                break
    assert (usd.revenue, usd.wallet, usd.hold) == (full_orders * order_total + remainder, 0, 0)
    assert len(steps) == 2 + full_orders + 1
    assert min(step.balance_after for step in steps) == 0
    check_books(session_maker)


@postgresql_only
def test_32_replays_of_one_issue_key_issue_once(books, pool) -> None:
    session_maker = pool(32)
    specs = [CardSpec("US", 1000), CardSpec("US", 2000, active=False), CardSpec("JP", 3000)]

    def work(worker: int):
        return in_transaction(session_maker, issue_cards, specs, idempotency_key="order-42")

    results = all_at_once(32, work)
    assert all(result == results[0] for result in results)
    assert [c.amount for c in results[0]] == [1000, 2000, 3000]
    with session_maker() as session:
        assert session.execute(select(func.count()).select_from(Card)).scalar_one() == 3
        assert session.execute(select(func.count()).select_from(LedgerTransaction)).scalar_one() == 1
    check_books(session_maker)


@postgresql_only
def test_32_replays_of_one_redeem_key_redeem_once(books, pool) -> None:
    card = books.issue_one(2500)
    session_maker = pool(32)

    def work(worker: int):
        # Each thread types the code its own way; the request is the same.
        typed = card.code.reveal().lower() if worker % 2 else card.code.normalized
        return in_transaction(
            session_maker, redeem, typed, account="alice", marketplace="US", idempotency_key="redeem-42"
        )

    results = all_at_once(32, work)
    assert all(result == results[0] for result in results)
    assert results[0].balance_after == 2500
    assert books.balance("alice") == 2500
    with session_maker() as session:
        assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == 1
    check_books(session_maker)


@postgresql_only
def test_every_kind_of_write_on_one_wallet_at_once(books, pool) -> None:
    """Redemptions into, holds on, releases and refunds back to one wallet: no deadlock."""
    cards = books.issue(*([500] * 16))
    books.fund("hot", 5000)
    # Checkouts to settle concurrently: captured ones are refunded, held ones released.
    held = [books.apply("hot", 200, order=f"pre-{i}") for i in range(8)]
    captured = [books.apply("hot", 200, order=f"cap-{i}") for i in range(8)]
    for state in captured:
        books.run(capture, state.checkout_id, idempotency_key=f"pre-capture-{state.checkout_id}")
    session_maker = pool(48)

    def work(worker: int) -> int:
        kind, i = divmod(worker, 16)
        if kind == 0:
            return in_transaction(
                session_maker,
                redeem,
                cards[i].code.reveal(),
                account="hot",
                marketplace="US",
                idempotency_key=f"redeem-{i}",
            ).amount
        if kind == 1:
            return -in_transaction(
                session_maker,
                apply_balance,
                account="hot",
                marketplace="US",
                order_ref=f"new-{i}",
                order_total=450,
                idempotency_key=f"apply-{i}",
            ).held
        state = (held + captured)[i]
        if i < 8:
            return in_transaction(
                session_maker, release, state.checkout_id, idempotency_key=f"rel-{i}"
            ).released
        return in_transaction(
            session_maker, refund, state.checkout_id, amount=200, idempotency_key=f"ref-{i}"
        ).refunded

    moved = all_at_once(48, work)
    with session_maker() as session:
        final = balance(session, account="hot", marketplace="US").amount
    assert final == 5000 - 16 * 200 + sum(moved)
    assert sum(moved[:16]) == 16 * 500
    check_books(session_maker)


@sqlite_only
def test_sqlite_serialises_concurrent_writers(books, pool) -> None:
    """BEGIN IMMEDIATE and the busy timeout: every writer waits its turn, none sees "locked"."""
    cards = books.issue(*range(200, 210))
    books.fund("shared", 1000)
    session_maker = pool(8)

    def work(worker: int) -> tuple[int, int]:
        redeemed = 0
        for card in cards:
            try:
                redeem_code(
                    session_maker,
                    card.code.reveal(),
                    account=f"w{worker}",
                    marketplace="US",
                    idempotency_key=f"w{worker}-{card.card_id}",
                )
                redeemed += 1
            except AlreadyRedeemed:
                pass
        held = 0
        for order in range(3):
            state = in_transaction(
                session_maker,
                apply_balance,
                account="shared",
                marketplace="US",
                order_ref=f"{worker}-{order}",
                order_total=60,
                idempotency_key=f"apply-{worker}-{order}",
            )
            if state.checkout_id is not None:
                in_transaction(
                    session_maker, capture, state.checkout_id, idempotency_key=f"c-{worker}-{order}"
                )
            held += state.held
        return redeemed, held

    results = all_at_once(8, work)
    assert sum(redeemed for redeemed, _ in results) == 10
    # 8 workers x 3 orders x 60 asks for 1440 of a balance of 1000: exactly 1000 is held.
    assert sum(held for _, held in results) == 1000
    assert books.balance("shared") == 0
    check_books(session_maker)
