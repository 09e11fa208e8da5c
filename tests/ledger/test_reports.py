"""The liability report reconciles to the ledger to the minor unit, on a generated history of
seven years (issuance, redemptions, checkouts, voids, swaps, expiry and reinstatement), on
both engines. Every figure is checked against an oracle computed here, one account at a
time, from the ledger's entries."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import literal, select, union_all

from ledger import capture, reconcile, swap_card, void_card
from ledger.expiry import expire_card, reinstate_card
from ledger.models import Account, Card, Entry, LedgerTransaction
from ledger.reports import AGE_BUCKETS, liability, years_before
from ledger.swaps import set_rate
from tests.ledger.conftest import LedgerDriver

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
START = years_before(NOW, 7)
LEDGER_CLOCKS = (
    "ledger.cards",
    "ledger.redemption",
    "ledger.checkout",
    "ledger.posting",
    "ledger.swaps.services",
    "ledger.expiry",
)


@dataclass
class Clock:
    at: dt.datetime = START

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """The ledger's time, set by the test: a history of years is written in a second."""
    now = Clock()
    for module in LEDGER_CLOCKS:
        monkeypatch.setattr(f"{module}.utcnow", now)
    yield now


@dataclass
class History:
    expired: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reinstated: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _expire(session: Any, card_id: int, replace: bool, at: dt.datetime, history: History) -> None:
    """Expire a card through the ledger (card -> breakage) and maybe reinstate it
    (breakage -> new card); a card whose policy gives it no expiry is given one first."""
    card = session.get_one(Card, card_id)
    if card.expires_at is None or card.expires_at > at:
        card.expires_at = at
    expire_card(session, card_id, idempotency_key=f"report-expire-{card_id}", now=at)
    history.expired[card.currency] += card.amount
    if replace:
        reinstate_card(session, card_id, idempotency_key=f"report-reinstate-{card_id}")
        history.reinstated[card.currency] += card.amount


def _past_expiry(books: LedgerDriver, card_id: int, at: dt.datetime) -> bool:
    with books.Session() as s:
        expires_at = s.get_one(Card, card_id).expires_at
    return expires_at is not None and expires_at <= at


def generate(books: LedgerDriver, clock: Clock, seed: int) -> History:
    rng = random.Random(seed)
    history = History()
    clock.at = START
    books.run(set_rate, "USD", "GBP", "0.79", START.date())
    books.run(set_rate, "GBP", "JPY", "191.3", START.date())
    live: list[tuple[int, str, str]] = []  # (card id, marketplace, code)
    day = START
    while day < NOW - dt.timedelta(days=2):
        day += dt.timedelta(days=rng.randint(10, 70), seconds=rng.randint(0, 86_399))
        clock.at = min(day, NOW - dt.timedelta(days=1))
        market = rng.choice(["US", "US", "UK", "JP", "DE"])
        amounts = [
            rng.choice([500, 1000, 2500, 5000]) * (100 if market == "JP" else 1)
            for _ in range(rng.randint(1, 3))
        ]
        for card in books.issue(*amounts, marketplace=market):
            live.append((card.card_id, market, card.code.reveal()))
        for _ in range(rng.randint(0, 2)):
            if not live:
                break
            card_id, market, code = live.pop(rng.randrange(len(live)))
            action = rng.choice(["redeem", "redeem", "redeem", "void", "swap", "expire", "reinstate", "keep"])
            owner = f"cust-{rng.randint(1, 6)}"
            if action in ("redeem", "swap") and _past_expiry(books, card_id, clock.at):
                action = "expire"  # its marketplace's policy ended it: only expiry is left
            if action == "redeem":
                books.redeem(code, owner, market)
                if rng.random() < 0.5:
                    state = books.apply(owner, rng.randint(100, 3000), market, order=f"o-{card_id}")
                    if state.checkout_id is not None and rng.random() < 0.7:
                        books.run(capture, state.checkout_id, idempotency_key=books.key("cap"))
            elif action == "void":
                books.run(void_card, card_id, idempotency_key=books.key("void"))
            elif action == "swap" and market in ("US", "UK", "DE"):
                target = {"US": "UK", "UK": "JP", "DE": "FR"}[market]
                new = books.run(swap_card, card_id, to_marketplace=target, idempotency_key=books.key("swap"))
                live.append((new.new_card.card_id, target, new.new_card.code.reveal()))
            elif action in ("expire", "reinstate"):
                books.run(_expire, card_id, action == "reinstate", clock.at, history)
            else:
                live.append((card_id, market, code))
    return history


def _bucket(at: dt.datetime, as_of: dt.datetime) -> str:
    for years, name in zip((1, 3, 5), AGE_BUCKETS, strict=False):
        if at > years_before(as_of, years):
            return name
    return AGE_BUCKETS[-1]


def oracle(books: LedgerDriver, as_of: dt.datetime) -> dict[str, Any]:
    """Every figure of the report, computed account by account in Python."""
    issue: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    activity: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    balances: dict[tuple[str, str], int] = defaultdict(int)
    with books.Session() as s:
        cards = {c.account_id: c for c in s.scalars(select(Card))}
        for account in s.scalars(select(Account)):
            entries = [
                e
                for e in s.scalars(select(Entry).where(Entry.account_id == account.id))
                if e.posted_at < as_of
            ]
            if not entries:
                continue
            total = sum(e.amount for e in entries)
            balances[(account.currency, account.kind)] += total
            if account.kind not in ("card", "wallet", "hold") or total == 0:
                continue
            card = cards.get(account.id)
            first = card.issued_at if card else min(e.posted_at for e in entries)
            last = max(e.posted_at for e in entries)
            country = {"UK": "GB"}.get(account.marketplace, account.marketplace)
            for table, at in ((issue, first), (activity, last)):
                cell = table[(account.currency, account.kind, country, _bucket(at, as_of))]
                cell[0] += 1
                cell[1] += total
        cohorts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        kinds = {t.id: t.kind for t in s.scalars(select(LedgerTransaction))}
        for card in cards.values():
            if card.issued_at >= as_of:
                continue
            month = card.issued_at.strftime("%Y-%m")
            debits = [
                kinds[e.transaction_id]
                for e in s.scalars(select(Entry).where(Entry.account_id == card.account_id, Entry.amount < 0))
                if e.posted_at < as_of
            ]
            for outcome in ("issued", debits[0] if debits else "outstanding"):
                cohorts[(card.currency, month, outcome)][0] += 1
                cohorts[(card.currency, month, outcome)][1] += card.amount
    return {
        "issue": {k: tuple(v) for k, v in issue.items()},
        "activity": {k: tuple(v) for k, v in activity.items()},
        "balances": {k: v for k, v in balances.items() if v or k[1] not in ("funding", "revenue")},
        "cohorts": {k: tuple(v) for k, v in cohorts.items()},
    }


def figures(books: LedgerDriver, as_of: dt.datetime) -> dict[str, Any]:
    with books.Session() as s:
        report = liability(s, as_of=as_of)
    return {
        "issue": {
            (b.currency, b.kind, b.country, b.bucket): (b.accounts, b.amount) for b in report.by_issue_age
        },
        "activity": {
            (b.currency, b.kind, b.country, b.bucket): (b.accounts, b.amount) for b in report.by_activity_age
        },
        "balances": {
            (b.currency, b.kind): b.amount
            for b in report.balances
            if b.amount or b.kind not in ("funding", "revenue")
        },
        "cohorts": {(c.currency, c.cohort, c.outcome): (c.cards, c.amount) for c in report.cohorts},
        "report": report,
    }


def test_every_figure_reconciles_to_the_ledger_on_a_generated_history(
    books: LedgerDriver, clock: Clock
) -> None:
    history = generate(books, clock, seed=13)
    clock.at = NOW
    books.reconciled()
    for as_of in (
        NOW + dt.timedelta(seconds=1),
        years_before(NOW, 2),
        years_before(NOW, 4) + dt.timedelta(days=17),
    ):
        got, expected = figures(books, as_of), oracle(books, as_of)
        for name in ("issue", "activity", "balances", "cohorts"):
            assert got[name] == expected[name], f"{name} as of {as_of}"

    report = figures(books, NOW + dt.timedelta(seconds=1))["report"]
    with books.Session() as s:
        ledger_totals = {t.currency: t for t in reconcile(s).currencies}
    used = {b.bucket for b in report.by_issue_age}
    assert used == set(AGE_BUCKETS), "the history spans every age bucket"
    kinds = {m.kind for m in report.movements}
    assert {"issue", "redeem", "void", "swap", "expire", "reinstate", "hold", "capture"} <= kinds
    for summary in report.summary:
        totals = ledger_totals[summary.currency]
        for basis in (report.by_issue_age, report.by_activity_age):
            aged = [b for b in basis if b.currency == summary.currency]
            assert sum(b.amount for b in aged if b.kind == "card") == summary.cards == totals.card
            assert sum(b.amount for b in aged if b.kind == "wallet") == summary.wallets == totals.wallet
            assert sum(b.amount for b in aged if b.kind == "hold") == summary.holds == totals.hold
        assert summary.outstanding == totals.outstanding_liability
        assert (summary.expired, summary.reinstated) == (
            history.expired.get(summary.currency, 0),
            history.reinstated.get(summary.currency, 0),
        )
    redeem_rows = [c for c in report.cohorts if c.outcome == "redeem"]
    assert redeem_rows and all(0 < c.share <= 1 for c in redeem_rows)


def test_an_empty_ledger_reports_nothing(books: LedgerDriver) -> None:
    with books.Session() as s:
        report = liability(s)
    assert (report.by_issue_age, report.cohorts, report.movements, report.summary) == ([], [], [], [])


def test_the_given_country_of_a_card_wins_over_its_marketplace(books: LedgerDriver) -> None:
    us, uk = books.issue_one(1000, "US"), books.issue_one(2000, "UK")
    # Given twice for one card (a caller's duplicate rows must not count the card twice).
    given = union_all(
        select(literal(us.card_id).label("card_id"), literal("CA").label("country")),
        select(literal(us.card_id).label("card_id"), literal("CA").label("country")),
    )
    with books.Session() as s:
        report = liability(s, card_countries=select(given.subquery()))
    assert {(b.currency, b.country, b.accounts, b.amount) for b in report.by_issue_age} == {
        ("USD", "CA", 1, 1000),
        ("GBP", "GB", 1, 2000),
    }
    assert uk.card_id != us.card_id
