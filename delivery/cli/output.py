"""How ops commands print: ``--json`` for scripts, tables for people.

Tables stay readable at 80 columns and when piped (rich takes the width from the
terminal, else ``COLUMNS``, else 80). Ids, addresses and masked codes are copied by hand,
so they are never wrapped or cut: when a table's unwrappable columns cannot fit the
width, each row is printed as a block of ``name: value`` lines instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ledger.marketplaces import plain_amount


def console() -> Console:
    # Made per command, not at import: COLUMNS and the terminal are read when it is made.
    return Console(highlight=False, emoji=False, markup=False)


def say(text: str) -> None:
    """One plain line (words wrap at spaces, so an id or address is never split)."""
    console().print(Text(text))


def show(*renderables: RenderableType) -> None:
    out = console()
    for renderable in renderables:
        out.print(renderable, crop=False)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as objects, times in ISO 8601, decimals
    (rates, shares) as their exact text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    return value


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(plain(value), ensure_ascii=False, indent=2))


def report_action(json: bool, dry_run: bool, text: str, data: object) -> None:
    """What an action did (or, in a dry run, would have done): a line, or JSON."""
    if json:
        emit_json({"dry_run": dry_run, "result": data})
    else:
        say(f"dry run, nothing changed: would have {text}" if dry_run else text)


def money(amount: int, marketplace: str) -> str:
    return plain_amount(amount, marketplace)


def when(at: dt.datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else ""


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    name: str
    whole: bool = False
    """An id, address, masked code or amount: never wrapped, never cut."""


def table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> RenderableType:
    """A table, or one block per row when it would cut an id or split a word at this width."""
    grid = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        grid.add_column(column.name, no_wrap=column.whole, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    out = console()
    with out.capture() as captured:
        out.print(grid)
    shown = captured.get()
    words = {w for c in columns for w in c.name.split()} | {
        w for row in rows for cell in row for w in cell.split()
    }
    whole = {cell for row in rows for c, cell in zip(columns, row, strict=True) if c.whole}
    if all(w in shown for w in words | whole):
        return grid
    return _blocks(title, columns, rows)


def _blocks(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> RenderableType:
    label = max(len(c.name) for c in columns) + 1
    lines: list[RenderableType] = [Text(title, style="italic")]
    for row in rows:
        lines.append(Text(""))
        for column, value in zip(columns, row, strict=True):
            line = f"{column.name + ':':<{label}} {value}"
            # A whole value runs past the edge rather than being cut (show() does not crop).
            lines.append(Text(line, no_wrap=True, overflow="ignore") if column.whole else Text(line))
    return Group(*lines)
