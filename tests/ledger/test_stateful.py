"""The ledger against a small in-memory model, every invariant checked after every step.

Each example gets account names of its own, so examples share the test's database
without seeing each other; database-wide figures are compared as deltas from the
example's start. Bounded (15 examples of up to 20 steps per engine) to stay cheap.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from ledger import (
    CardSpec,
    CheckoutState,
    ClaimCode,
    RedemptionResult,
    activate_card,
    apply_balance,
    balance,
    capture,
    issue_cards,
    reconcile,
    redeem,
    refund,
    release,
    void_card,
)
from ledger.errors import (
    AlreadyRedeemed,
    CardNotActive,
    CardVoided,
    CodeMistyped,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidState,
    WrongMarketplace,
)
from ledger.marketplaces import get_marketplace
from ledger.models import Account, Card

MARKETS = ["US", "JP"]
SETTINGS = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_examples = itertools.count()


@dataclass
class ModelCard:
    code: ClaimCode
    amount: int
    market: str
    status: str
    redeemed_to: tuple[str, str] | None = None


@dataclass
class ModelCheckout:
    account: str
    market: str
    held: int
    captured: int = 0
    released: int = 0
    refunded: int = 0

    @property
    def outstanding(self) -> int:
        return self.held - self.captured - self.released


@dataclass(frozen=True)
class Redeemed:
    key: str
    code: ClaimCode
    account: str
    market: str
    result: RedemptionResult


class LedgerMachine(RuleBasedStateMachine):
    cards = Bundle("cards")
    checkouts = Bundle("checkouts")

    def __init__(self, books) -> None:
        super().__init__()
        self.books = books
        self.example = next(_examples)
        self.accounts = [f"x{self.example}-alice", f"x{self.example}-bob"]
        self.keys = itertools.count()
        self.model_cards: dict[int, ModelCard] = {}
        self.model_checkouts: dict[int, ModelCheckout] = {}
        self.wallets: dict[tuple[str, str], int] = defaultdict(int)
        self.redeemed: list[Redeemed] = []
        self.baseline = self.figures()

    # --- helpers ---------------------------------------------------------------------

    def key(self) -> str:
        return f"x{self.example}-{next(self.keys)}"

    def figures(self) -> dict[str, tuple[int, ...]]:
        with self.books.Session() as session:
            report = reconcile(session)
        return {t.currency: (t.card, t.wallet, t.hold, t.revenue, t.funding) for t in report.currencies}

    def check_state(self, state: CheckoutState, checkout: ModelCheckout) -> None:
        assert (state.held, state.captured, state.released, state.refunded) == (
            checkout.held,
            checkout.captured,
            checkout.released,
            checkout.refunded,
        )

    # --- rules ---------------------------------------------------------------------------

    @initialize(target=cards, amounts=st.lists(st.integers(1, 5000), min_size=4, max_size=4))
    def fund_the_wallets(self, amounts: list[int]):
        """Every example starts with money in some wallets, so checkouts have work to do."""
        card_ids = []
        for market, pair in zip(MARKETS, (amounts[:2], amounts[2:]), strict=True):
            card_ids += self.issue(pair, market, active=True).values
        for card_id, who in zip(card_ids[::2], (0, 1), strict=True):
            self.redeem(card_id, who, at_home=True, mistyped=False)
        return multiple(*card_ids)

    @initialize(target=checkouts, amount=st.integers(2, 5000))
    def a_captured_checkout(self, amount: int) -> int:
        """And with a checkout partly captured, so refunds have something to give back."""
        [card_id] = self.issue([amount], "US", active=True).values
        self.redeem(card_id, 0, at_home=True, mistyped=False)
        account = self.accounts[0]
        state = self.books.run(
            apply_balance,
            account=account,
            marketplace="US",
            order_ref=self.key(),
            order_total=amount,
            idempotency_key=self.key(),
        )
        assert state.held == amount
        self.wallets[(account, "US")] -= amount
        checkout = self.model_checkouts[state.checkout_id] = ModelCheckout(account, "US", amount)
        captured = self.books.run(capture, state.checkout_id, amount=amount // 2, idempotency_key=self.key())
        checkout.captured = amount // 2
        self.check_state(captured, checkout)
        return state.checkout_id

    @rule(
        target=cards,
        amounts=st.lists(st.integers(1, 5000), min_size=1, max_size=3),
        market=st.sampled_from(MARKETS),
        active=st.sampled_from([True, True, True, False]),
    )
    def issue(self, amounts: list[int], market: str, active: bool):
        issued = self.books.run(
            issue_cards, [CardSpec(market, a, active=active) for a in amounts], idempotency_key=self.key()
        )
        for card, amount in zip(issued, amounts, strict=True):
            assert (card.amount, card.marketplace) == (amount, market)
            self.model_cards[card.card_id] = ModelCard(
                card.code, amount, market, "active" if active else "inactive"
            )
        return multiple(*(card.card_id for card in issued))

    @rule(card_id=cards)
    def activate(self, card_id: int) -> None:
        card = self.model_cards[card_id]
        if card.status in ("redeemed", "voided"):
            with pytest.raises(InvalidState):
                self.books.run(activate_card, card_id, idempotency_key=self.key())
            return
        view = self.books.run(activate_card, card_id, idempotency_key=self.key())
        card.status = "active"
        assert view.status == "active"

    @rule(card_id=cards)
    def void(self, card_id: int) -> None:
        card = self.model_cards[card_id]
        if card.status in ("redeemed", "voided"):
            with pytest.raises(InvalidState):
                self.books.run(void_card, card_id, idempotency_key=self.key())
            return
        assert self.books.run(void_card, card_id, idempotency_key=self.key()).status == "voided"
        card.status = "voided"

    @rule(
        card_id=cards,
        who=st.sampled_from([0, 1]),
        at_home=st.sampled_from([True, True, True, False]),
        mistyped=st.sampled_from([False, False, False, False, True]),
    )
    def redeem(self, card_id: int, who: int, at_home: bool, mistyped: bool) -> None:
        market = self.model_cards[card_id].market
        if not at_home:
            market = next(m for m in MARKETS if m != market)
        card, account = self.model_cards[card_id], self.accounts[who]
        typed = card.code.reveal()
        if mistyped:
            typed = ("Y" if typed[0] != "Y" else "X") + typed[1:]
        key = self.key()

        def attempt() -> RedemptionResult:
            return self.books.run(redeem, typed, account=account, marketplace=market, idempotency_key=key)

        expected: type[Exception] | None = None
        if mistyped:
            expected = CodeMistyped
        elif card.status == "voided":
            expected = CardVoided
        elif card.status == "redeemed":
            with pytest.raises(AlreadyRedeemed) as refused:
                attempt()
            assert refused.value.to_this_account == (card.redeemed_to == (account, market))
            return
        elif market != card.market:
            expected = WrongMarketplace
        elif card.status == "inactive":
            expected = CardNotActive
        if expected is not None:
            with pytest.raises(expected):
                attempt()
            return
        result = attempt()
        self.wallets[(account, market)] += card.amount
        card.status, card.redeemed_to = "redeemed", (account, market)
        assert (result.card_id, result.amount) == (card_id, card.amount)
        assert result.balance_after == self.wallets[(account, market)]
        self.redeemed.append(Redeemed(key, card.code, account, market, result))

    @precondition(lambda self: self.redeemed)
    @rule(data=st.data(), same_request=st.booleans())
    def replay_redeem(self, data: st.DataObject, same_request: bool) -> None:
        first = data.draw(st.sampled_from(self.redeemed))
        before = self.books.counts()
        account = first.account if same_request else f"x{self.example}-mallory"
        call = (redeem, first.code.normalized.lower())
        kwargs = {"account": account, "marketplace": first.market, "idempotency_key": first.key}
        if same_request:
            assert self.books.run(*call, **kwargs) == first.result
        else:
            with pytest.raises(IdempotencyConflict):
                self.books.run(*call, **kwargs)
        assert self.books.counts() == before

    @rule(target=checkouts, data=st.data(), total=st.integers(1, 8000))
    def apply(self, data: st.DataObject, total: int):
        funded = sorted(wallet for wallet, amount in self.wallets.items() if amount)
        everyone = [(a, m) for a in self.accounts for m in MARKETS]
        # Mostly a wallet with money in it; sometimes any (an empty one holds nothing).
        pick_funded = bool(funded) and data.draw(st.sampled_from([True, True, True, False]))
        account, market = data.draw(st.sampled_from(funded if pick_funded else everyone))
        state = self.books.run(
            apply_balance,
            account=account,
            marketplace=market,
            order_ref=self.key(),
            order_total=total,
            idempotency_key=self.key(),
        )
        held = min(self.wallets[(account, market)], total)
        assert (state.held, state.remaining_to_pay) == (held, total - held)
        if held == 0:
            assert state.checkout_id is None
            return multiple()
        self.wallets[(account, market)] -= held
        self.model_checkouts[state.checkout_id] = ModelCheckout(account, market, held)
        return state.checkout_id

    @rule(checkout_id=checkouts, data=st.data(), take=st.booleans())
    def settle(self, checkout_id: int, data: st.DataObject, take: bool) -> None:
        checkout = self.model_checkouts[checkout_id]
        # All that is held (None), a part of it, or a little too much.
        amount = data.draw(st.none() | st.integers(1, checkout.outstanding + 10))
        fn = capture if take else release
        moved = checkout.outstanding if amount is None else amount
        if moved == 0 or moved > checkout.outstanding:
            with pytest.raises(InsufficientFunds):
                self.books.run(fn, checkout_id, amount=amount, idempotency_key=self.key())
            return
        state = self.books.run(fn, checkout_id, amount=amount, idempotency_key=self.key())
        if take:
            checkout.captured += moved
        else:
            checkout.released += moved
            self.wallets[(checkout.account, checkout.market)] += moved
        self.check_state(state, checkout)

    @rule(checkout_id=checkouts, data=st.data())
    def refund(self, checkout_id: int, data: st.DataObject) -> None:
        checkout = self.model_checkouts[checkout_id]
        amount = data.draw(st.integers(1, checkout.captured - checkout.refunded + 10))
        if amount > checkout.captured - checkout.refunded:
            with pytest.raises(InsufficientFunds):
                self.books.run(refund, checkout_id, amount=amount, idempotency_key=self.key())
            return
        state = self.books.run(refund, checkout_id, amount=amount, idempotency_key=self.key())
        checkout.refunded += amount
        self.wallets[(checkout.account, checkout.market)] += amount
        self.check_state(state, checkout)

    # --- invariants ----------------------------------------------------------------------

    def teardown(self) -> None:
        for account in self.accounts:
            for market in MARKETS:
                got = self.books.run(balance, account=account, marketplace=market).amount
                assert got == self.wallets[(account, market)], (account, market)

    @invariant()
    def ledger_matches_the_model(self) -> None:
        with self.books.Session() as session:
            # One query for every wallet of the example (balance() is checked in teardown).
            stored = session.execute(
                select(Account.owner, Account.marketplace, Account.balance).where(
                    Account.kind == "wallet", Account.owner.in_(self.accounts)
                )
            ).all()
            assert {(o, m): b for o, m, b in stored if b} == {k: v for k, v in self.wallets.items() if v}
            if self.model_cards:
                statuses = dict(
                    session.execute(select(Card.id, Card.status).where(Card.id.in_(self.model_cards))).all()
                )
                assert statuses == {cid: c.status for cid, c in self.model_cards.items()}
            negative = session.execute(select(func.count()).where(Account.balance < 0)).scalar_one()
            assert negative == 0
            report = reconcile(session)
        assert report.ok, report.problems
        assert all(t.total == 0 for t in report.currencies)

        figures = {t.currency: (t.card, t.wallet, t.hold, t.revenue, t.funding) for t in report.currencies}
        for market in MARKETS:
            currency = get_marketplace(market).currency
            cards = [c for c in self.model_cards.values() if c.market == market]
            checkouts = [c for c in self.model_checkouts.values() if c.market == market]
            expected = (
                sum(c.amount for c in cards if c.status in ("active", "inactive")),
                sum(v for (_, m), v in self.wallets.items() if m == market),
                sum(c.outstanding for c in checkouts),
                sum(c.captured - c.refunded for c in checkouts),
                -sum(c.amount for c in cards if c.status != "voided"),
            )
            now = figures.get(currency, (0,) * 5)
            start = self.baseline.get(currency, (0,) * 5)
            assert tuple(n - s for n, s in zip(now, start, strict=True)) == expected, currency


def test_ledger_follows_its_model(books) -> None:
    run_state_machine_as_test(lambda: LedgerMachine(books), settings=SETTINGS)
