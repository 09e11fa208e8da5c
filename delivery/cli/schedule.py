"""``giftq schedule FILE.csv``: one-off sends from a CSV file, each row an order of one line.

Columns and an example: ``docs/examples/schedule.csv`` (the README describes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from delivery.cli._imports import run_import
from delivery.programs import imports

# A command group with no subcommands: its options may follow the file (``FILE --json``).
app = typer.Typer(
    help="Schedule one-off sends from a CSV file.", context_settings={"allow_interspersed_args": True}
)


@app.callback(invoke_without_command=True)
def schedule(
    file: Annotated[Path, typer.Argument(help="The CSV file.", exists=True, dir_okay=False)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and say what would happen.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Place one order per row (a gift sent at its local time); a row placed before is skipped.

    Every row is checked first: any bad row is reported and nothing is placed."""
    run_import(
        file,
        lambda sessions, progress: imports.schedule(sessions, file, dry_run=dry_run, progress=progress),
        noun="sends",
        as_json=as_json,
    )
