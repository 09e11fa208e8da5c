"""The ``giftq`` command line: one Typer app, one module per group of commands."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from api import cli as api_cli
from delivery.channels.physical import cli as fulfilment_cli
from delivery.channels.sms import cli as sms_sink
from delivery.cli import db, demo, sink
from delivery.cli import ledger as ledger_cli
from delivery.cli import ops as ops_cli
from delivery.cli import programs as programs_cli
from delivery.cli import report as report_cli
from delivery.cli import schedule as schedule_cli
from delivery.logs import configure_logging
from giftq.settings import SettingsError, get_settings

app = typer.Typer(help="giftq: sell and deliver gift cards.", no_args_is_help=True)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    configure_logging(logging.DEBUG if verbose else logging.INFO)
    try:
        get_settings()  # read once, up front: a bad variable is one line, not a traceback later
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(sink.app, name="smtp-sink")
app.add_typer(sms_sink.app, name="sms-sink")
app.add_typer(ops_cli.app, name="ops")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(fulfilment_cli.app, name="fulfilment")
app.add_typer(api_cli.serve_app, name="api")
app.add_typer(api_cli.keys_app, name="api-keys")
app.add_typer(programs_cli.app, name="programs")
app.add_typer(schedule_cli.app, name="schedule")
app.add_typer(report_cli.app, name="report")
# Command groups register here, one line each.
