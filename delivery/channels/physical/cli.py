"""``giftq fulfilment``: physical cards. Codes are never shown.

Mount with ``app.add_typer(delivery.channels.physical.cli.app, name="fulfilment")``.
Every command is one transaction; what it queues goes to the workers after commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, RenderableType
from rich.table import Table
from sqlalchemy.orm import Session

from delivery.channels.physical import batches, ops, reports
from delivery.channels.physical.errors import ReportRefused
from delivery.errors import DeliveryError
from giftq.db import session_factory, utcnow

app = typer.Typer(help="Physical cards: batches, the vendor's reports, lost cards.", no_args_is_help=True)
console = Console(highlight=False)
Limit = Annotated[int, typer.Option(help="Show at most this many.")]


@contextmanager
def _transaction() -> Iterator[Session]:
    try:
        with session_factory().begin() as session:
            yield session
    except DeliveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _cards(rows: list[ops.CardView], *, title: str) -> RenderableType:
    # Imported here: delivery.cli's package module imports this one to register its commands.
    from delivery.cli import output  # noqa: PLC0415

    columns = [
        output.Column("item", whole=True),
        output.Column("order", whole=True),
        output.Column("card", whole=True),
        output.Column("recipient"),
        output.Column("ship to"),
        output.Column("status"),
        output.Column("batch", whole=True),
        output.Column("vendor says"),
        output.Column("tries"),
    ]
    cells = []
    for c in rows:
        said = f"{c.reported} {c.carrier or ''} {c.tracking_number or ''}".strip() if c.reported else ""
        cells.append(
            [
                c.item_ref,
                str(c.order_id),
                c.card or "",
                c.recipient_name,
                c.ship_to,
                c.status if c.status != "scheduled" else f"due {c.due_at:%F %H:%M} UTC",
                c.batch_ref or "",
                said,
                str(c.attempts) + (f" ({c.last_error[:40]})" if c.last_error else ""),
            ]
        )
    # A table when it fits the terminal; one block per card when it would cut a name or an id.
    return output.table(title, columns, cells)


def _show(renderable: RenderableType) -> None:
    # The console that measured the table prints it (made now: the width is read now).
    from delivery.cli import output  # noqa: PLC0415

    output.show(renderable)


@app.command()
def awaiting(limit: Limit = 100) -> None:
    """Cards not yet with the vendor (waiting for a cut-off or a retry)."""
    with _transaction() as session:
        rows = ops.awaiting(session, limit=limit)
    _show(_cards(rows, title="awaiting fulfilment"))


@app.command("batches")
def list_batches(limit: Limit = 20) -> None:
    """The latest batches."""
    with _transaction() as session:
        rows = ops.list_batches(session, limit=limit)
    table = Table(title="batches")
    for column in ("batch", "status", "cards", "made", "re-sent", "answer"):
        table.add_column(column, no_wrap=column == "batch")
    for b in rows:
        table.add_row(
            b.ref, b.status, str(b.cards), f"{b.created_at:%F %T}", str(b.resends), (b.response or "")[:60]
        )
    console.print(table)


@app.command()
def batch(ref: str) -> None:
    """A batch and its cards."""
    with _transaction() as session:
        view, rows = ops.in_batch(session, ref)
    console.print(
        f"batch {view.ref} ({view.backend}): {view.status}, {view.cards} cards, {view.response or ''}"
    )
    _show(_cards(rows, title=view.ref))


@app.command()
def shipped(limit: Limit = 100) -> None:
    """Shipped cards, with carrier and tracking number."""
    with _transaction() as session:
        rows = ops.shipped(session, limit=limit)
    _show(_cards(rows, title="shipped"))


@app.command()
def resend(ref: str) -> None:
    """Hand a batch to the vendor again (the cards it still holds)."""
    with _transaction() as session:
        report = ops.resend_batch(session, ref)
    console.print(f"sent {report.name}: {report.cards} cards; {report.answer}")
    if report.left_out:
        console.print(f"left out (shipped or replaced): {', '.join(report.left_out)}")


@app.command()
def lost(
    card_id: int,
    detail: Annotated[str, typer.Option(help="What happened, for the record.")] = "",
) -> None:
    """Void a card that will never arrive; a new card goes in the next batch."""
    with _transaction() as session:
        view = ops.mark_lost(session, card_id, detail=detail)
    console.print(
        f"card {card_id} voided; new card {view.card} in delivery {view.id}, due {view.due_at:%F %H:%M} UTC"
    )


@app.command()
def run() -> None:
    """Make the batches of every physical card due by now (normally beat does, at each cut-off)."""
    try:
        report = batches.run(session_factory(), release_due=utcnow())
    except DeliveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    console.print(report.as_dict())


@app.command("reports")
def apply_reports(
    path: Annotated[Path | None, typer.Argument(help="One report file; default: the whole inbox.")] = None,
) -> None:
    """Apply the vendor's report files now (normally beat does, every minute)."""
    if path is None:
        results = reports.process_inbox(session_factory())
        for result in results:
            if result.applied is None:
                console.print(f"{result.name}: refused, nothing changed")
                for problem in result.problems:
                    console.print(f"  {problem}")
            else:
                console.print(f"{result.name}: {len(result.applied.changed)} changed")
        return
    try:
        with session_factory().begin() as session:
            applied = reports.apply_csv(session, path.read_bytes(), source=f"file:{path.name}")
    except ReportRefused as exc:
        typer.echo(f"{path.name}: refused, nothing changed", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    console.print(f"{path.name}: {len(applied.changed)} changed, {len(applied.unchanged)} already known")
