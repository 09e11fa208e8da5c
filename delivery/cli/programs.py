"""``giftq programs``: birthday programs, a gift every year. Import, list, show, pause,
resume, end, change, and the years skipped.

Every command is one transaction; ``--json`` prints what a script reads, otherwise tables.
Ending and changing a program ask first (``--yes`` answers for scripts).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from delivery.cli._imports import run_import, sessions
from delivery.errors import DeliveryError
from delivery.programs import imports, rows, services
from delivery.programs.models import BirthdayProgram, ProgramPlacement, ProgramStatus
from giftq.db import utcnow
from ledger.marketplaces import get_marketplace

app = typer.Typer(help="Birthday programs: a gift every year.", no_args_is_help=True)
console = Console(highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@contextmanager
def _transaction() -> Iterator[Session]:
    factory = sessions()
    try:
        with factory.begin() as session:
            yield session
    except DeliveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _money(amount: int, marketplace: str) -> str:
    market = get_marketplace(marketplace)
    if market.minor_units == 0:
        return f"{amount:,} {market.currency}"
    whole, part = divmod(amount, 10**market.minor_units)
    return f"{whole:,}.{part:0{market.minor_units}d} {market.currency}"


def _when(instant: dt.datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def program_dict(p: BirthdayProgram) -> dict[str, Any]:
    return {
        "id": p.id,
        "status": str(p.status),
        "name": p.name,
        "email": p.email,
        "phone": p.phone,
        "birth_date": p.birth_date.isoformat(),
        "zone": p.zone,
        "send_time": p.send_time,
        "marketplace": p.marketplace,
        "amount": p.amount,
        "channel": str(p.channel),
        "design": p.design,
        "message": p.message_template,
        "purchaser": {"name": p.purchaser_name, "email": p.purchaser_email},
        "next_year": p.next_year,
        "next_place_at": _when(p.next_place_at),
        "created_at": _when(p.created_at),
    }


def placement_dict(p: ProgramPlacement) -> dict[str, Any]:
    return {
        "program_id": p.program_id,
        "year": p.year,
        "order_id": p.order_id,
        "skipped": None if p.skip_reason is None else str(p.skip_reason),
        "detail": p.detail,
        "send_at": _when(p.send_at),
        "at": _when(p.created_at),
    }


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _programs_table(programs: list[BirthdayProgram], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "status", "name", "to", "birthday", "send", "amount", "next placed"):
        table.add_column(column, no_wrap=column in {"id", "to", "amount"})
    for p in programs:
        table.add_row(
            str(p.id),
            str(p.status),
            p.name,
            p.email or p.phone or "",
            p.birth_date.strftime("%d %b"),
            f"{p.send_time} {p.zone}",
            _money(p.amount, p.marketplace),
            "-" if p.status != ProgramStatus.ACTIVE else f"{p.next_year}: {p.next_place_at:%F %H:%M} UTC",
        )
    return table


def _placements_table(placements: list[ProgramPlacement], title: str) -> Table:
    table = Table(title=title)
    for column in ("program", "year", "order", "skipped", "send at (UTC)", "recorded (UTC)"):
        table.add_column(column, no_wrap=True)
    for p in placements:
        skipped = "" if p.skip_reason is None else str(p.skip_reason) + (f": {p.detail}" if p.detail else "")
        table.add_row(
            str(p.program_id),
            str(p.year),
            str(p.order_id or "-"),
            skipped,
            f"{p.send_at:%F %H:%M}",
            f"{p.created_at:%F %H:%M}",
        )
    return table


def _show(program: BirthdayProgram, as_json: bool) -> None:
    if as_json:
        _echo_json(program_dict(program))
    else:
        console.print(_programs_table([program], f"birthday program {program.id}"))


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The CSV file.", exists=True, dir_okay=False)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and say what would happen.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add the programs of a CSV file; a row imported before is left as it is.

    Every row is checked first: any bad row is reported and nothing is written."""
    now = utcnow()
    run_import(
        file,
        lambda factory, progress: imports.import_programs(
            factory, file, now=now, dry_run=dry_run, progress=progress
        ),
        noun="programs",
        as_json=as_json,
    )


@app.command("list")
def list_(
    status: Annotated[ProgramStatus | None, typer.Option(help="Only programs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, by id.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List programs."""
    with _transaction() as session:
        found = list(services.list_programs(session, status=status, limit=limit))
    if as_json:
        _echo_json([program_dict(p) for p in found])
    else:
        console.print(_programs_table(found, f"{len(found)} birthday programs"))


@app.command()
def show(program_id: int, as_json: JsonOption = False) -> None:
    """Show a program and each year it placed or skipped."""
    with _transaction() as session:
        program = services.get(session, program_id)
        years = list(services.placements(session, program_id))
    if as_json:
        _echo_json(program_dict(program) | {"placements": [placement_dict(p) for p in years]})
        return
    _show(program, False)
    console.print(f"message: {program.message_template}")
    console.print(f"purchaser: {program.purchaser_name} <{program.purchaser_email}>")
    console.print(_placements_table(years, "years placed or skipped"))


@app.command()
def pause(program_id: int, as_json: JsonOption = False) -> None:
    """Pause a program: nothing is placed until it is resumed."""
    with _transaction() as session:
        program = services.pause(session, program_id, now=utcnow())
    _show(program, as_json)


@app.command()
def resume(program_id: int, as_json: JsonOption = False) -> None:
    """Resume a paused program from the next birthday still ahead."""
    with _transaction() as session:
        program = services.resume(session, program_id, now=utcnow())
    _show(program, as_json)


@app.command()
def end(program_id: int, yes: YesOption = False, as_json: JsonOption = False) -> None:
    """End a program for good (gifts already placed still go out)."""
    if not yes:
        typer.confirm(f"End birthday program {program_id} for good?", abort=True)
    with _transaction() as session:
        program = services.end(session, program_id, now=utcnow())
    _show(program, as_json)


@app.command()
def change(
    program_id: int,
    *,
    name: Annotated[str | None, typer.Option(help="The person's name.")] = None,
    email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Their mobile number (E.164).")] = None,
    birth_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    zone: Annotated[str | None, typer.Option(help="IANA time zone.")] = None,
    send_time: Annotated[str | None, typer.Option(help="Local HH:MM on the day.")] = None,
    marketplace: Annotated[str | None, typer.Option(help="US, CA, UK, DE, FR, JP.")] = None,
    amount: Annotated[int | None, typer.Option(help="Minor units.")] = None,
    channel: Annotated[str | None, typer.Option(help="email or sms.")] = None,
    design: Annotated[str | None, typer.Option(help="A design folder's name.")] = None,
    message: Annotated[str | None, typer.Option(help="The message; {name} is the person's name.")] = None,
    purchaser_name: Annotated[str | None, typer.Option(help="Who gives the gift.")] = None,
    purchaser_email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Change a program from its next year not yet placed (a placed gift is not touched)."""
    given = {
        "name": name,
        "email": email,
        "phone": phone,
        "birth_date": birth_date,
        "zone": zone,
        "send_time": send_time,
        "marketplace": marketplace,
        "amount": amount,
        "channel": channel,
        "design": design,
        "message": message,
        "purchaser_name": purchaser_name,
        "purchaser_email": purchaser_email,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        typer.echo("error: name at least one field to change (see --help)", err=True)
        raise typer.Exit(2)
    if not yes:
        listed = ", ".join(f"{k}={v}" for k, v in changes.items())
        typer.confirm(f"Change birthday program {program_id} from its next year: {listed}?", abort=True)
    with _transaction() as session:
        current = services.get(session, program_id)
        spec = rows.parse_program(services.spec_of(current) | changes)
        program = services.change(session, program_id, spec, now=utcnow())
    _show(program, as_json)


@app.command()
def skipped(
    days: Annotated[int, typer.Option(help="Skipped in the last this many days.")] = 30,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Years not placed (too late, paused, refused by intake): what ops should look at."""
    with _transaction() as session:
        found = list(services.skipped(session, since=utcnow() - dt.timedelta(days=days), limit=limit))
    if as_json:
        _echo_json([placement_dict(p) for p in found])
    else:
        console.print(_placements_table(found, f"{len(found)} years skipped in the last {days} days"))
