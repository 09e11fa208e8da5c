"""``giftq report``: reports for finance, printed for scripts and spreadsheets.

``liability`` writes CSV on stdout (``--json`` for the whole report as one object): one
row per figure, every amount in integer minor units of its currency. Sections:

- ``outstanding_by_issue_age`` / ``outstanding_by_activity_age``: balances of cards,
  wallets and holds per country and age bucket (kind = account kind, group = bucket);
- ``cohort``: per issue month (group), what was issued and where it went (kind =
  ``issued`` or the outcome: ``redeem``, ``void``, ``swap``, ``expire``, ``outstanding``),
  with its share of the month's issued value (the redemption rate on ``redeem`` rows);
- ``movement``: money moved per transaction kind (``expire``: to breakage;
  ``reinstate``: back from it);
- ``balance``: each account kind's ledger balance, which the outstanding rows add up to.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from typing import Annotated

import typer

from delivery.cli.output import emit_json
from delivery.cli.runner import DebugOption, JsonOption, fail, reading
from delivery.orders.countries import purchaser_countries
from ledger.reports import AgedBalance, LiabilityReport, liability

app = typer.Typer(help="Reports: liability and breakage.", no_args_is_help=True)

COLUMNS = ["section", "currency", "kind", "country", "group", "count", "amount", "share"]


def _end_of(text: str | None) -> dt.datetime | None:
    """The end of a UTC date: the report counts everything posted before the next midnight."""
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of {text!r} is not a date like 2026-12-31", 2)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def rows(report: LiabilityReport) -> list[list[object]]:
    """The report as CSV rows (without the header)."""

    def aged(section: str, balances: list[AgedBalance]) -> list[list[object]]:
        return [
            [section, b.currency, b.kind, b.country, b.bucket, b.accounts, b.amount, ""] for b in balances
        ]

    out = aged("outstanding_by_issue_age", report.by_issue_age)
    out += aged("outstanding_by_activity_age", report.by_activity_age)
    out += [
        ["cohort", c.currency, c.outcome, "", c.cohort, c.cards, c.amount, c.share] for c in report.cohorts
    ]
    out += [["movement", m.currency, m.kind, "", "", m.transactions, m.amount, ""] for m in report.movements]
    out += [["balance", b.currency, b.kind, "", "", "", b.amount, ""] for b in report.balances]
    return out


@app.command(name="liability")
def liability_report(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="As at the end of this UTC date (default: now).")
    ] = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Outstanding card and wallet value per currency, aged, by country; cohorts; breakage."""
    at = _end_of(as_of)
    with reading(debug=debug) as session:
        report = liability(session, as_of=at, card_countries=purchaser_countries())
    if json:
        emit_json({"report": report, "outstanding": {s.currency: s.outstanding for s in report.summary}})
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(report))
