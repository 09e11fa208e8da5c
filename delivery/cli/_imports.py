"""What ``giftq programs import`` and ``giftq schedule`` share: the progress bar, the
report of a file's rows, and the one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session, sessionmaker

from delivery.errors import DeliveryError
from delivery.programs.imports import ImportReport, report_json
from giftq import migrate
from giftq.db import session_factory

MAX_ERRORS_SHOWN = 50
"""A file with thousands of bad rows shows the first ones and a count, not a wall of text."""

err = Console(stderr=True, highlight=False)


class RichProgress:
    """A bar per phase (checking rows, writing them) on stderr; silent when stderr is no terminal."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def phase(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, count: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, count)


def sessions() -> sessionmaker[Session]:
    try:
        # Before any engine exists: a wrong data dir must not leave an empty database behind.
        migrate.require_head()
    except migrate.SchemaNotReady as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return session_factory()


def run_import(
    path: Path,
    do: Callable[[sessionmaker[Session], RichProgress], ImportReport],
    *,
    noun: str,
    as_json: bool,
) -> None:
    """Run one import with a progress bar, then print its report; exit 1 on any error."""
    factory = sessions()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=True, disable=as_json) as bar:
            report = do(factory, RichProgress(bar))
    except DeliveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(report_json(report))
    else:
        _print(path, report, noun)
    if not report.ok:
        raise typer.Exit(1)


def _print(path: Path, report: ImportReport, noun: str) -> None:
    for error in report.errors[:MAX_ERRORS_SHOWN]:
        typer.echo(f"{path}: {error}", err=True)
    if len(report.errors) > MAX_ERRORS_SHOWN:
        typer.echo(f"... and {len(report.errors) - MAX_ERRORS_SHOWN} more errors", err=True)
    if report.errors:
        typer.echo(f"{len(report.errors)} errors in {report.rows} rows: nothing written", err=True)
        return
    verb = "would add" if report.dry_run else "added"
    typer.echo(
        f"{report.rows} rows: {verb} {report.added} {noun}, {report.already} already there"
        + (" (dry run: nothing written)" if report.dry_run else "")
    )
