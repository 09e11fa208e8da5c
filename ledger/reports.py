"""The liability report: what the business owes on gift cards and balances, and how old it is.

Per currency, as of an instant (everything posted before it):

- **outstanding**: the balance of every card, wallet and hold account, aged by issue date
  (a card's ``issued_at``; a wallet's or hold's first entry) and by last activity (the
  account's latest entry), in buckets of 0-1, 1-3, 3-5 and 5+ years (an age of exactly one
  year is in 1-3), per last known country of the purchaser (given by the caller for each
  card; otherwise, and for wallets and holds, the marketplace's country);
- **cohorts**: cards by issue month (UTC), what each month issued and where that value
  went: redeemed, voided, swapped, expired (the kind of the transaction that emptied the
  card) or still outstanding; the redemption rate is the redeemed share of the value;
- **movements**: money moved per transaction kind (the sum of its credits): ``expire`` is
  what went to breakage, ``reinstate`` what came back from it;
- **balances**: every account kind's balance, the ledger's own figure, which the
  outstanding buckets add up to, to the minor unit.

Everything is aggregated in SQL (a handful of grouped rows per currency come back), and
grouped by the kinds the ledger holds, so new account or transaction kinds show up as
they are posted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    SQLColumnExpression,
    bindparam,
    case,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from giftq.db import UTCDateTime, is_sqlite, utcnow
from ledger.errors import InvalidRequest
from ledger.marketplaces import MARKETPLACES
from ledger.models import Account, AccountKind, Card, Entry, LedgerTransaction

AGE_BUCKETS = ("0-1", "1-3", "3-5", "5+")
"""Ages in years, each bucket from its lower bound (included) to its upper (excluded)."""
OUTSTANDING_KINDS = (AccountKind.CARD.value, AccountKind.WALLET.value, AccountKind.HOLD.value)
STILL_OUTSTANDING = "outstanding"
ISSUED = "issued"


@dataclass(frozen=True, slots=True)
class AgedBalance:
    currency: str
    kind: str
    """The account kind: card, wallet or hold."""
    country: str
    bucket: str
    accounts: int
    amount: int


@dataclass(frozen=True, slots=True)
class CohortOutcome:
    currency: str
    cohort: str
    """The issue month, ``YYYY-MM`` (UTC)."""
    outcome: str
    """``issued`` (all the month's cards), or where their value went: the kind of the
    transaction that emptied the card (``redeem``, ``void``, ``swap``, ``expire``), or
    ``outstanding``."""
    cards: int
    amount: int
    share: Decimal
    """``amount`` over the cohort's issued amount (4 places); the redemption rate for ``redeem``."""


@dataclass(frozen=True, slots=True)
class Movement:
    currency: str
    kind: str
    """The transaction kind."""
    transactions: int
    amount: int
    """The sum of its credits (money moved)."""


@dataclass(frozen=True, slots=True)
class KindBalance:
    currency: str
    kind: str
    """The account kind."""
    amount: int


@dataclass(frozen=True, slots=True)
class CurrencySummary:
    currency: str
    cards: int
    wallets: int
    holds: int
    expired: int
    """Moved to breakage by ``expire`` transactions."""
    reinstated: int
    """Moved back from breakage by ``reinstate`` transactions."""

    @property
    def outstanding(self) -> int:
        return self.cards + self.wallets + self.holds


@dataclass(frozen=True, slots=True)
class LiabilityReport:
    as_of: dt.datetime
    by_issue_age: list[AgedBalance] = field(default_factory=list)
    by_activity_age: list[AgedBalance] = field(default_factory=list)
    cohorts: list[CohortOutcome] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    balances: list[KindBalance] = field(default_factory=list)
    summary: list[CurrencySummary] = field(default_factory=list)


def years_before(at: dt.datetime, years: int) -> dt.datetime:
    """The same instant ``years`` calendar years earlier (29 February -> 28 February)."""
    try:
        return at.replace(year=at.year - years)
    except ValueError:
        return at.replace(year=at.year - years, day=28)


def liability(
    session: Session,
    *,
    as_of: dt.datetime | None = None,
    card_countries: Select[Any, Any] | None = None,
) -> LiabilityReport:
    """The report as of ``as_of`` (default: now); ``card_countries`` selects
    ``(card_id, country)``: the purchaser's country of the cards that have one."""
    at = as_of or utcnow()
    if at.tzinfo is None:
        raise InvalidRequest("as_of must be an aware instant (with its zone), not a naive time")
    by_issue, by_activity = _outstanding(session, at, card_countries)
    movements = _movements(session, at)
    balances = _balances(session, at)
    return LiabilityReport(
        as_of=at,
        by_issue_age=by_issue,
        by_activity_age=by_activity,
        cohorts=_cohorts(session, at),
        movements=movements,
        balances=balances,
        summary=_summary(balances, movements),
    )


def _instant(at: dt.datetime) -> ColumnElement[dt.datetime]:
    return bindparam(None, at, type_=UTCDateTime())


def _bucket(column: ColumnElement[dt.datetime], at: dt.datetime) -> ColumnElement[str]:
    bounds = [years_before(at, n) for n in (1, 3, 5)]
    return case(
        *(
            (column > _instant(bound), literal(name))
            for bound, name in zip(bounds, AGE_BUCKETS, strict=False)
        ),
        else_=literal(AGE_BUCKETS[-1]),
    )


def _home_country(marketplace: SQLColumnExpression[str]) -> ColumnElement[str]:
    return case({code: m.country for code, m in MARKETPLACES.items()}, value=marketplace, else_="")


def _outstanding(
    session: Session, at: dt.datetime, card_countries: Select[Any, Any] | None
) -> tuple[list[AgedBalance], list[AgedBalance]]:
    per_account = (
        select(
            Entry.account_id,
            func.sum(Entry.amount).label("balance"),
            func.min(Entry.posted_at).label("first_at"),
            func.max(Entry.posted_at).label("last_at"),
        )
        .where(Entry.posted_at < _instant(at))
        .group_by(Entry.account_id)
        .subquery()
    )
    country: ColumnElement[str] = _home_country(Account.marketplace)
    query = (
        select(Account.currency, Account.kind, per_account.c.balance)
        .join(per_account, per_account.c.account_id == Account.id)
        .outerjoin(Card, Card.account_id == Account.id)
        .where(Account.kind.in_(OUTSTANDING_KINDS), per_account.c.balance != 0)
    )
    if card_countries is not None:
        given = card_countries.subquery()
        # One country per card, whatever the caller's rows: a duplicate must not count twice.
        countries: FromClause = (
            select(given.c.card_id, func.max(given.c.country).label("country"))
            .group_by(given.c.card_id)
            .subquery()
        )
        query = query.outerjoin(countries, countries.c.card_id == Card.id)
        country = func.coalesce(countries.c.country, country)
    issued = func.coalesce(Card.issued_at, per_account.c.first_at)
    rows = query.add_columns(
        country.label("country"),
        _bucket(issued, at).label("issued_bucket"),
        _bucket(per_account.c.last_at, at).label("activity_bucket"),
    ).subquery()
    grouped = session.execute(
        select(
            rows.c.currency,
            rows.c.kind,
            rows.c.country,
            rows.c.issued_bucket,
            rows.c.activity_bucket,
            func.count(),
            func.sum(rows.c.balance),
        ).group_by(rows.c.currency, rows.c.kind, rows.c.country, rows.c.issued_bucket, rows.c.activity_bucket)
    ).all()
    by_issue: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_activity: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for currency, kind, where, issued_bucket, activity_bucket, count, amount in grouped:
        for table, bucket in ((by_issue, issued_bucket), (by_activity, activity_bucket)):
            totals = table[(currency, kind, where or "", bucket)]
            totals[0] += int(count)
            totals[1] += int(amount)
    return _aged(by_issue), _aged(by_activity)


def _aged(table: dict[tuple[str, str, str, str], list[int]]) -> list[AgedBalance]:
    order = {name: i for i, name in enumerate(AGE_BUCKETS)}
    return [
        AgedBalance(currency, kind, country, bucket, count, amount)
        for (currency, kind, country, bucket), (count, amount) in sorted(
            table.items(), key=lambda item: (*item[0][:3], order[item[0][3]])
        )
    ]


def _month(session: Session, column: SQLColumnExpression[dt.datetime]) -> ColumnElement[str]:
    if is_sqlite(session):
        return func.strftime("%Y-%m", column)  # stored as naive UTC text
    return func.to_char(func.timezone("UTC", column), "YYYY-MM")


def _cohorts(session: Session, at: dt.datetime) -> list[CohortOutcome]:
    emptied = (
        select(Entry.account_id, func.max(LedgerTransaction.kind).label("kind"))
        .join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)
        .join(Card, Card.account_id == Entry.account_id)
        .where(Entry.amount < 0, Entry.posted_at < _instant(at))
        .group_by(Entry.account_id)
        .subquery()
    )
    cards = (
        select(
            Card.currency,
            _month(session, Card.issued_at).label("cohort"),
            func.coalesce(emptied.c.kind, STILL_OUTSTANDING).label("outcome"),
            Card.amount,
        )
        .outerjoin(emptied, emptied.c.account_id == Card.account_id)
        .where(Card.issued_at < _instant(at))
        .subquery()
    )
    grouped = session.execute(
        select(
            cards.c.currency, cards.c.cohort, cards.c.outcome, func.count(), func.sum(cards.c.amount)
        ).group_by(cards.c.currency, cards.c.cohort, cards.c.outcome)
    ).all()
    issued: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for currency, cohort, _outcome, count, amount in grouped:
        issued[(currency, cohort)][0] += int(count)
        issued[(currency, cohort)][1] += int(amount)
    rows = [(c, m, ISSUED, n, a) for (c, m), (n, a) in issued.items()]
    rows += [(c, m, o, int(n), int(a)) for c, m, o, n, a in grouped]
    return [
        CohortOutcome(currency, cohort, outcome, count, amount, _share(amount, issued[(currency, cohort)][1]))
        for currency, cohort, outcome, count, amount in sorted(
            rows, key=lambda r: (r[0], r[1], r[2] != ISSUED, r[2])
        )
    ]


def _share(part: int, whole: int) -> Decimal:
    if not whole:
        return Decimal(0)
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def _movements(session: Session, at: dt.datetime) -> list[Movement]:
    rows = session.execute(
        select(
            Entry.currency,
            LedgerTransaction.kind,
            func.count(func.distinct(Entry.transaction_id)),
            func.sum(case((Entry.amount > 0, Entry.amount), else_=0)),
        )
        .join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)
        .where(Entry.posted_at < _instant(at))
        .group_by(Entry.currency, LedgerTransaction.kind)
        .order_by(Entry.currency, LedgerTransaction.kind)
    ).all()
    return [Movement(c, k, int(n), int(a)) for c, k, n, a in rows]


def _balances(session: Session, at: dt.datetime) -> list[KindBalance]:
    rows = session.execute(
        select(Account.currency, Account.kind, func.sum(Entry.amount))
        .join(Entry, Entry.account_id == Account.id)
        .where(Entry.posted_at < _instant(at))
        .group_by(Account.currency, Account.kind)
        .order_by(Account.currency, Account.kind)
    ).all()
    return [KindBalance(c, k, int(a)) for c, k, a in rows]


def _summary(balances: list[KindBalance], movements: list[Movement]) -> list[CurrencySummary]:
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for b in balances:
        kinds[b.currency][b.kind] += b.amount
    for m in movements:
        kinds[m.currency][f"moved:{m.kind}"] += m.amount
    return [
        CurrencySummary(
            currency,
            cards=k[AccountKind.CARD.value],
            wallets=k[AccountKind.WALLET.value],
            holds=k[AccountKind.HOLD.value],
            expired=k["moved:expire"],
            reinstated=k["moved:reinstate"],
        )
        for currency, k in sorted(kinds.items())
    ]
