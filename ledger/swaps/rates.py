"""Exchange rates as data: loaded with the date from which each applies, never floats.

A rate says what one major unit of ``from_currency`` (a dollar) is worth in major units
of ``to_currency`` (pounds): ``0.79``. It is kept as the decimal text it was given in and
computed with as an exact fraction. A pair's rate on a day is the one with the latest
``effective_from`` not after that day (UTC dates). A rate, once loaded for a date, never
changes (a swap may have used it): loading the same value again is a no-op, another value
is a :class:`RateConflict`.

Conversion rounds down to the minor unit (:func:`convert`): the holder gets the exact
value or up to one minor unit less, never more; what is cut is less than a cent (or one
yen) and stays with the seller. Between two marketplaces of one currency (DE and FR,
both EUR) no rate is needed: the amount is the same.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from ledger.errors import InvalidRequest, NoExchangeRate, RateConflict
from ledger.marketplaces import MARKETPLACES
from ledger.sqlutil import insert_ignore
from ledger.swaps.models import ExchangeRate

MAX_RATE = Decimal(10**6)
MAX_RATE_TEXT = 40


@dataclass(frozen=True, slots=True)
class Rate:
    from_currency: str
    to_currency: str
    rate: Decimal
    effective_from: dt.date


def minor_units(currency: str) -> int:
    """The ISO 4217 exponent of a currency some marketplace uses."""
    for market in MARKETPLACES.values():
        if market.currency == currency:
            return market.minor_units
    known = ", ".join(sorted({m.currency for m in MARKETPLACES.values()}))
    raise InvalidRequest(f"currency {currency!r} is not one of a marketplace (known: {known})")


def _currency(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a currency code like USD")
    currency = value.strip().upper()
    minor_units(currency)
    return currency


def parse_rate(value: object) -> Decimal:
    """A positive, finite decimal from text, an int or a Decimal; a float is refused (TypeError)."""
    if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"a rate is a decimal string or Decimal, not {type(value).__name__}")
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidRequest(f"rate {value!r} is not a decimal number like 0.79") from None
    if not rate.is_finite() or rate <= 0 or rate > MAX_RATE:
        raise InvalidRequest(f"rate {value!r} must be a positive number no larger than {MAX_RATE}")
    text = rate_text(rate)
    if len(text) > MAX_RATE_TEXT:
        raise InvalidRequest(f"rate {value!r} has more than {MAX_RATE_TEXT} characters")
    return Decimal(text)


def rate_text(rate: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros: ``0.79``, ``150``."""
    return format(rate.normalize(), "f")


def convert(amount: int, rate: Decimal, from_currency: str, to_currency: str) -> int:
    """``amount`` minor units of one currency in the other's minor units, rounded down."""
    exact = (
        Fraction(amount)
        * Fraction(rate)
        * Fraction(10) ** (minor_units(to_currency) - minor_units(from_currency))
    )
    return math.floor(exact)


def set_rate(
    session: Session, from_currency: str, to_currency: str, rate: object, effective_from: dt.date
) -> Rate:
    """Load a rate; the same value again changes nothing, another value for that date conflicts."""
    source, target = _currency(from_currency, "from_currency"), _currency(to_currency, "to_currency")
    if source == target:
        raise InvalidRequest(f"a rate needs two currencies, not {source} twice")
    if not isinstance(effective_from, dt.date) or isinstance(effective_from, dt.datetime):
        raise InvalidRequest("effective_from must be a date")
    value = parse_rate(rate)
    insert_ignore(
        session,
        ExchangeRate,
        {
            "from_currency": source,
            "to_currency": target,
            "rate": rate_text(value),
            "effective_from": effective_from,
            "created_at": utcnow(),
        },
    )
    stored = session.execute(
        select(ExchangeRate).where(
            ExchangeRate.from_currency == source,
            ExchangeRate.to_currency == target,
            ExchangeRate.effective_from == effective_from,
        )
    ).scalar_one()
    if Decimal(stored.rate) != value:
        raise RateConflict(
            f"the {source}->{target} rate from {effective_from} is {stored.rate} already; "
            f"rates never change: load {rate_text(value)} from a later date"
        )
    return _rate(stored)


def rate_on(session: Session, from_currency: str, to_currency: str, day: dt.date) -> Rate:
    """The rate in effect on ``day``: the latest loaded from that day or before."""
    source, target = _currency(from_currency, "from_currency"), _currency(to_currency, "to_currency")
    row = session.execute(
        select(ExchangeRate)
        .where(
            ExchangeRate.from_currency == source,
            ExchangeRate.to_currency == target,
            ExchangeRate.effective_from <= day,
        )
        .order_by(ExchangeRate.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise NoExchangeRate(
            f"no exchange rate from {source} to {target} applies on {day}; "
            "load one first (giftq ledger rates set)"
        )
    return _rate(row)


def list_rates(
    session: Session, *, from_currency: str | None = None, to_currency: str | None = None
) -> list[Rate]:
    """Every loaded rate (of one pair, or from or to one currency), oldest first per pair."""
    query = select(ExchangeRate).order_by(
        ExchangeRate.from_currency, ExchangeRate.to_currency, ExchangeRate.effective_from
    )
    if from_currency is not None:
        query = query.where(ExchangeRate.from_currency == _currency(from_currency, "from_currency"))
    if to_currency is not None:
        query = query.where(ExchangeRate.to_currency == _currency(to_currency, "to_currency"))
    return [_rate(row) for row in session.scalars(query)]


def _rate(row: ExchangeRate) -> Rate:
    return Rate(row.from_currency, row.to_currency, Decimal(row.rate), row.effective_from)
