"""Expiry policies, as data: per marketplace and card origin, when a card stops being valid.

A rule is a validity in months from issue (or from a reinstatement, which is a new load),
optionally running to the end of that calendar year, or none: the card does not expire.
A marketplace or origin the table does not name gets "does not expire", and every message
about such a card says so. The table is our reading of each market's consumer rules, kept
conservative (a longer validity than the law asks for is always allowed); have counsel
check it before relying on it:

- US: the CARD Act (15 U.S.C. 1693l-1, Regulation E 12 CFR 1005.20) forbids expiry
  sooner than five years after issue or the last load, and several states (California,
  Connecticut, Florida, Maine, Massachusetts, Minnesota, Montana, New Hampshire, Rhode
  Island, Washington and others) forbid expiry of purchased cards outright. One nationwide rule
  that no state overrides: purchased cards never expire. Promotional cards are outside
  the five-year rule when their expiry is disclosed: six months.
- CA: Ontario (O. Reg. 17/05 under the Consumer Protection Act, 2002), British
  Columbia, Quebec, Manitoba and others forbid expiry of purchased cards; promotional
  cards given free may expire when that is disclosed: six months.
- UK: no statute sets a minimum; 24 months is common practice and what buyers expect.
  Promotional: three months.
- DE: the general limitation period (BGB sections 195, 199: three years, running from the
  end of the year of issue) is what courts hold a shorter validity against (BGB 307):
  purchased cards are valid until the end of the third year after issue. Promotional: three months.
- FR: French consumer law, as we read it, asks for a validity of at least one year
  (dated on the card); we give 24 months. Promotional: three months.
- JP: the Payment Services Act lets prepaid instruments expire (one valid for six months
  or less is outside its deposit rules), but cards that never expire are common and
  expected: purchased cards do not expire. Promotional: six months.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from giftq.settings import get_settings
from ledger.errors import InvalidRequest
from ledger.marketplaces import get_marketplace
from ledger.models import CardOrigin


@dataclass(frozen=True, slots=True)
class ExpiryRule:
    """``months`` of validity from issue (None: the card does not expire); with
    ``to_year_end`` the validity runs on to the end of the calendar year it ends in."""

    months: int | None = None
    to_year_end: bool = False

    def expires_at(self, issued_at: dt.datetime) -> dt.datetime | None:
        """The instant (UTC) a card issued at ``issued_at`` stops being valid: midnight at
        the start of the day after its last valid day, or None."""
        if self.months is None:
            return None
        day = issued_at.astimezone(dt.UTC).date()
        months = day.month - 1 + self.months
        year, month = day.year + months // 12, months % 12 + 1
        last = dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
        if self.to_year_end:
            last = dt.date(last.year, 12, 31)
        return dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


DOES_NOT_EXPIRE = ExpiryRule()

POLICIES: dict[str, dict[CardOrigin, ExpiryRule]] = {
    "US": {CardOrigin.PURCHASED: DOES_NOT_EXPIRE, CardOrigin.PROMOTIONAL: ExpiryRule(6)},
    "CA": {CardOrigin.PURCHASED: DOES_NOT_EXPIRE, CardOrigin.PROMOTIONAL: ExpiryRule(6)},
    "UK": {CardOrigin.PURCHASED: ExpiryRule(24), CardOrigin.PROMOTIONAL: ExpiryRule(3)},
    "DE": {CardOrigin.PURCHASED: ExpiryRule(36, to_year_end=True), CardOrigin.PROMOTIONAL: ExpiryRule(3)},
    "FR": {CardOrigin.PURCHASED: ExpiryRule(24), CardOrigin.PROMOTIONAL: ExpiryRule(3)},
    "JP": {CardOrigin.PURCHASED: DOES_NOT_EXPIRE, CardOrigin.PROMOTIONAL: ExpiryRule(6)},
}
"""Marketplace -> origin -> rule. What is not here does not expire."""


def origin_of(value: object) -> CardOrigin:
    if isinstance(value, str) and value in {str(o) for o in CardOrigin}:
        return CardOrigin(value)
    known = ", ".join(CardOrigin)
    raise InvalidRequest(f"unknown card origin {value!r} (known: {known})")


def rule_for(marketplace: str, origin: str) -> ExpiryRule:
    """The rule of ``marketplace`` for cards of ``origin``; "does not expire" by default."""
    return POLICIES.get(get_marketplace(marketplace).code, {}).get(origin_of(origin), DOES_NOT_EXPIRE)


def expires_at(marketplace: str, origin: str, issued_at: dt.datetime) -> dt.datetime | None:
    return rule_for(marketplace, origin).expires_at(issued_at)


def last_valid_day(expires_at: dt.datetime) -> dt.date:
    """The last (UTC) day a card that stops at ``expires_at`` can be used: what is disclosed."""
    return (expires_at.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()


def terms_url(marketplace: str) -> str:
    """Where a marketplace's card terms are: ``GIFTQ_TERMS_URL`` with ``{marketplace}``
    (lower case) filled in, by default ``<GIFTQ_PUBLIC_BASE_URL>/<marketplace>/terms``."""
    settings = get_settings()
    code = get_marketplace(marketplace).code.lower()
    template = settings.terms_url or settings.public_base_url.rstrip("/") + "/{marketplace}/terms"
    return template.replace("{marketplace}", code)
