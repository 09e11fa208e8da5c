"""Every write is idempotent by key: same key and request -> first result, one effect;
same key and another request -> IdempotencyConflict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ledger import (
    CardSpec,
    activate_card,
    apply_balance,
    capture,
    issue_cards,
    redeem,
    refund,
    release,
    void_card,
)
from ledger.errors import CardNotActive, IdempotencyConflict, InvalidRequest


@dataclass
class Write:
    """One write operation: ``call(books, ctx, variant)`` with variant "same" or "other"."""

    setup: Callable[[Any], Any]
    call: Callable[[Any, Any, str, str], Any]


def _issue(books, ctx, key, variant):
    amount = 2500 if variant == "same" else 2600
    return books.run(issue_cards, [CardSpec("US", amount), CardSpec("JP", 900)], idempotency_key=key)


def _two_cards(active):
    return lambda books: books.issue(100, 200, active=active)


def _activate(books, cards, key, variant):
    return books.run(activate_card, cards[0 if variant == "same" else 1].card_id, idempotency_key=key)


def _void(books, cards, key, variant):
    return books.run(void_card, cards[0 if variant == "same" else 1].card_id, idempotency_key=key)


def _redeem(books, cards, key, variant):
    account = "alice" if variant == "same" else "bob"
    return books.run(redeem, cards[0].code.reveal(), account=account, marketplace="US", idempotency_key=key)


def _funded(books):
    books.fund("alice", 5000)


def _apply(books, ctx, key, variant):
    total = 3000 if variant == "same" else 3100
    return books.run(
        apply_balance,
        account="alice",
        marketplace="US",
        order_ref="o-1",
        order_total=total,
        idempotency_key=key,
    )


def _held(books):
    books.fund("alice", 5000)
    return books.apply("alice", 3000)


def _settle(fn):
    def call(books, state, key, variant):
        amount = 1000 if variant == "same" else 999
        return books.run(fn, state.checkout_id, amount=amount, idempotency_key=key)

    return call


def _captured(books):
    state = _held(books)
    books.run(capture, state.checkout_id, idempotency_key="setup-capture")
    return state


WRITES = {
    "issue_cards": Write(lambda books: None, _issue),
    "activate_card": Write(_two_cards(active=False), _activate),
    "void_card": Write(_two_cards(active=True), _void),
    "redeem": Write(_two_cards(active=True), _redeem),
    "apply_balance": Write(_funded, _apply),
    "capture": Write(_held, _settle(capture)),
    "release": Write(_held, _settle(release)),
    "refund": Write(_captured, _settle(refund)),
}


@pytest.mark.parametrize("operation", list(WRITES))
def test_one_effect_per_key_and_a_conflict_for_another_request(books, operation: str) -> None:
    write = WRITES[operation]
    ctx = write.setup(books)
    before = books.counts()
    first = write.call(books, ctx, "key-1", "same")
    effect = books.counts()
    assert effect != before, "the first call did something"
    for _ in range(3):
        assert write.call(books, ctx, "key-1", "same") == first
    assert books.counts() == effect, "a replay has no effect"
    with pytest.raises(IdempotencyConflict, match="key-1"):
        write.call(books, ctx, "key-1", "other")
    assert books.counts() == effect, "a conflict has no effect"
    assert write.call(books, ctx, "key-1", "same") == first, "the conflict left the first result alone"
    books.reconciled()


def test_a_key_belongs_to_one_operation(books) -> None:
    state = _held(books)
    books.run(capture, state.checkout_id, amount=100, idempotency_key="shared")
    with pytest.raises(IdempotencyConflict, match=r"\(capture\)"):
        books.run(release, state.checkout_id, amount=100, idempotency_key="shared")
    with pytest.raises(IdempotencyConflict):
        books.run(issue_cards, [CardSpec("US", 100)], idempotency_key="shared")


def test_replay_returns_the_first_result_after_the_world_moved_on(books) -> None:
    books.fund("alice", 1000)
    first = books.run(
        apply_balance,
        account="alice",
        marketplace="US",
        order_ref="o",
        order_total=5000,
        idempotency_key="apply",
    )
    assert (first.held, first.remaining_to_pay) == (1000, 4000)
    books.fund("alice", 9000)
    replay = books.run(
        apply_balance,
        account="alice",
        marketplace="US",
        order_ref="o",
        order_total=5000,
        idempotency_key="apply",
    )
    assert replay == first
    assert books.balance("alice") == 9000


def test_redeem_replay_beats_already_redeemed(books) -> None:
    card = books.issue_one(700)
    first = books.redeem(card.code.reveal(), "alice", key="r")
    # The customer's retry (another spelling of the same code) gets its result, not a refusal.
    assert books.redeem(card.code.normalized.lower(), "alice", key="r") == first
    assert books.counts()["redemptions"] == 1


def test_a_refused_request_does_not_burn_its_key(books) -> None:
    card = books.issue_one(700, active=False)
    with pytest.raises(CardNotActive):
        books.redeem(card.code.reveal(), "alice", key="r")
    books.run(activate_card, card.card_id, idempotency_key="a")
    assert books.redeem(card.code.reveal(), "alice", key="r").amount == 700


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, None, 7])
def test_keys_are_non_empty_strings_of_bounded_length(books, key: object) -> None:
    with pytest.raises(InvalidRequest, match="idempotency_key"):
        books.run(issue_cards, [CardSpec("US", 100)], idempotency_key=key)
    assert books.counts()["cards"] == 0


def test_a_long_key_up_to_the_limit_works(books) -> None:
    key = "k" * 200
    first = books.issue(100, key=key)
    assert books.issue(100, key=key) == first
