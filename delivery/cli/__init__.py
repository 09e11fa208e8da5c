"""The ``giftq`` command line: one Typer app, one module per group of commands."""

from __future__ import annotations

import typer

from delivery.cli import db

app = typer.Typer(help="giftq: sell and deliver gift cards.", no_args_is_help=True)
app.add_typer(db.app, name="db")
# Command groups register here, one line each.
