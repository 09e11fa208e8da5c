"""``giftq ledger rates``: the exchange rates swaps use, as dated data.

``set`` loads one rate, ``load`` a CSV file of them (``from,to,rate,effective_from``, a
header line first), both as audited ops actions in one transaction (a bad row loads
nothing); ``list`` shows them. A rate is decimal text (``0.79``: one major unit of FROM
in major units of TO), never a float, and never changes once loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from delivery.cli.output import Column, emit_json, report_action, show, table
from delivery.cli.runner import ActorOption, DebugOption, DryRunOption, JsonOption, act, fail, reading
from ledger.errors import InvalidRequest
from ledger.swaps import Rate, list_rates, set_rate

app = typer.Typer(help="Exchange rates for swaps: set, load, list.", no_args_is_help=True)

HEADER = ["from", "to", "rate", "effective_from"]


def _day(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{where}: {text!r} is not a date like 2026-12-01") from None


def _line(rate: Rate) -> str:
    return f"{rate.from_currency}->{rate.to_currency} {rate.rate} from {rate.effective_from}"


@app.command(name="set")
def set_one(
    from_currency: Annotated[str, typer.Argument(metavar="FROM", help="The card's currency (USD).")],
    to_currency: Annotated[str, typer.Argument(metavar="TO", help="The new card's currency (GBP).")],
    rate: Annotated[str, typer.Argument(help="One FROM in TO, as a decimal: 0.79.")],
    *,
    effective_from: Annotated[str, typer.Option("--from", help="The UTC date it applies from.")],
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Load one rate, in effect from a date until a later one is loaded."""

    def do(session: Session) -> Rate:
        return set_rate(session, from_currency, to_currency, rate, _day(effective_from, "--from"))

    result = act(
        "ledger rates set",
        {"from": from_currency, "to": to_currency, "rate": rate, "effective_from": effective_from},
        do,
        lambda r: f"rate {_line(r)}",
        actor=actor,
        dry_run=dry_run,
        debug=debug,
    )
    report_action(json, dry_run, f"rate {_line(result)}", _plain(result))


def _rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", 2)
    if not rows or [c.strip().lower() for c in rows[0]] != HEADER:
        fail(f"{path}: the first line must be the header {','.join(HEADER)}", 2)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(HEADER):
            fail(f"{path} line {number}: {len(row)} fields, expected {len(HEADER)}", 2)
    return rows[1:]


@app.command()
def load(
    path: Annotated[Path, typer.Argument(help="A CSV file: from,to,rate,effective_from.")],
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Load a file of rates in one transaction: all of them, or none if one is bad."""
    rows = _rows(path)

    def do(session: Session) -> list[Rate]:
        loaded = []
        for number, (source, target, rate, day) in enumerate(rows, start=2):
            where = f"line {number}"
            try:
                loaded.append(set_rate(session, source, target, rate.strip(), _day(day, where)))
            except InvalidRequest as exc:
                raise InvalidRequest(f"{where}: {exc}") from None
        return loaded

    result = act(
        "ledger rates load",
        {"file": str(path), "rows": len(rows)},
        do,
        lambda r: f"loaded {len(r)} rates",
        actor=actor,
        dry_run=dry_run,
        debug=debug,
    )
    report_action(json, dry_run, f"loaded {len(result)} rates", [_plain(r) for r in result])


@app.command(name="list")
def list_all(
    from_currency: Annotated[
        str | None, typer.Option("--from", help="Only rates from this currency.")
    ] = None,
    to_currency: Annotated[str | None, typer.Option("--to", help="Only rates into this currency.")] = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Every loaded rate, per pair, oldest first."""
    with reading(debug=debug) as session:
        rates = list_rates(session, from_currency=from_currency, to_currency=to_currency)
    if json:
        emit_json([_plain(r) for r in rates])
        return
    columns = [Column("from"), Column("to"), Column("rate", whole=True), Column("effective from", whole=True)]
    cells = [[r.from_currency, r.to_currency, str(r.rate), r.effective_from.isoformat()] for r in rates]
    show(table(f"{len(rates)} exchange rates", columns, cells))


def _plain(rate: Rate) -> dict[str, str]:
    return {
        "from": rate.from_currency,
        "to": rate.to_currency,
        "rate": str(rate.rate),
        "effective_from": rate.effective_from.isoformat(),
    }
