"""A whole CSV file of birthday programs or one-off sends, all or nothing.

Every row is validated before anything is written; any bad row is reported (its spreadsheet
row number, the header being row 1, its column and the reason) and nothing is written.
Then the rows are written in batches of ``GIFTQ_IMPORT_BATCH_SIZE``, one transaction each.

Each row has a stable key, so a file imported twice adds nothing: ``row_id`` when the file
has that column (then a row may change between imports and still be the same row: a
program already imported is left as it is, change it with ``giftq programs change``), else
a hash of the row's validated content. Two rows of one file with the same key are an error.
A crash half-way leaves whole batches; the same command again adds the rest.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.errors import DeliveryError, InvalidOrder
from delivery.models import Order
from delivery.orders import schemas
from delivery.orders.intake import place_order, request_hash
from delivery.programs import rows, services
from delivery.programs.errors import InvalidProgram
from delivery.programs.models import BirthdayProgram
from giftq.settings import get_settings

T = TypeVar("T")
_ROW_ID = TypeAdapter(rows.ROW_ID)
_LOOKUP_CHUNK = 1000


class Progress(Protocol):
    """What an import reports as it goes (the CLI draws a bar)."""

    def phase(self, description: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    """The spreadsheet row number: the header is row 1."""
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason}


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    added: int = 0
    """Rows written now (with ``dry_run``: that would be written)."""
    already: int = 0
    """Rows a previous import wrote: left as they are."""
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "already": self.already,
            "dry_run": self.dry_run,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True, slots=True)
class _Valid(Generic[T]):
    row: int
    key: str
    value: T


class ImportRefused(DeliveryError):
    """The file cannot be read as a CSV of the expected columns."""


def read_csv(
    path: Path, columns: Sequence[str], required: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, cells) for each data row; the header is checked first."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")  # a BOM: saved from a spreadsheet
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle, strict=True)
        try:
            header = reader.fieldnames or []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportRefused(f"{path}: not a UTF-8 CSV file ({exc})") from None
        unknown = [c for c in header if c not in columns]
        missing = [c for c in required if c not in header]
        if unknown or missing or len(set(header)) != len(header):
            problems = []
            if missing:
                problems.append(f"missing columns: {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown columns: {', '.join(unknown)} (known: {', '.join(columns)})")
            if len(set(header)) != len(header):
                problems.append("a column appears twice")
            raise ImportRefused(f"{path}, row 1: " + "; ".join(problems))
        number = 1
        try:
            for cells in reader:
                number += 1
                if None in cells:
                    raise ImportRefused(f"{path}, row {number}: more cells than the header has columns")
                yield number, {k: v or "" for k, v in cells.items()}
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportRefused(f"{path}, row {number + 1}: {exc}") from None


def _validate(
    table: list[tuple[int, dict[str, str]]],
    *,
    parse: Callable[[dict[str, str]], T],
    content_key: Callable[[T], str],
    key_prefix: str,
    report: ImportReport,
    progress: Progress,
) -> list[_Valid[T]]:
    progress.phase("checking rows", len(table))
    valid: list[_Valid[T]] = []
    first_row_of: dict[str, int] = {}
    for number, cells in table:
        progress.advance(1)
        row_id = cells.get("row_id", "").strip()
        key: str | None = None
        if row_id:
            try:
                key = key_prefix + "row:" + _ROW_ID.validate_python(row_id)
            except ValidationError:
                report.errors.append(
                    RowError(number, "row_id", "must be 1-100 printable ASCII characters, no spaces")
                )
            if key is not None and _seen(key, number, first_row_of, report):
                continue
        try:
            value = parse(cells)
        except (InvalidProgram, InvalidOrder) as exc:
            report.errors += [RowError(number, e.path, e.message) for e in exc.errors]
            continue
        if not row_id:
            key = key_prefix + content_key(value)
            if _seen(key, number, first_row_of, report):
                continue
        if key is not None:
            valid.append(_Valid(number, key, value))
    return valid


def _seen(key: str, number: int, first_row_of: dict[str, int], report: ImportReport) -> bool:
    """Whether an earlier row of the file has this key (an error: one of them is a mistake)."""
    if key in first_row_of:
        report.errors.append(
            RowError(number, "row_id", f"the same row as row {first_row_of[key]} (give each its own row_id)")
        )
        return True
    first_row_of[key] = number
    return False


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def import_programs(
    sessions: sessionmaker[Session],
    path: Path,
    *,
    now: dt.datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Birthday programs from a CSV file (columns: :data:`rows.PROGRAM_COLUMNS`)."""
    progress = progress or _Silent()
    table = list(read_csv(path, rows.PROGRAM_COLUMNS, rows.PROGRAM_REQUIRED))
    report = ImportReport(rows=len(table), dry_run=dry_run)
    valid = _validate(
        table,
        parse=rows.program_row,
        content_key=lambda spec: "sha256:" + rows.content_hash(spec.model_dump_json()),
        key_prefix="program:",
        report=report,
        progress=progress,
    )
    if report.errors:
        return report
    with sessions() as session:
        existing: set[str] = set()
        for chunk in _chunks(valid, _LOOKUP_CHUNK):
            keys = [v.key for v in chunk]
            existing.update(
                session.scalars(
                    select(BirthdayProgram.import_key).where(BirthdayProgram.import_key.in_(keys))
                )
            )
    new = [v for v in valid if v.key not in existing]
    report.already = len(valid) - len(new)
    report.added = len(new)
    if dry_run:
        return report
    progress.phase("adding programs", len(new))
    for chunk in _chunks(new, get_settings().import_batch_size):
        with sessions.begin() as session:
            session.execute(
                insert(BirthdayProgram),
                [services.program_values(v.value, now=now, import_key=v.key) for v in chunk],
            )
        progress.advance(len(chunk))
    return report


def schedule(
    sessions: sessionmaker[Session],
    path: Path,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """One-off sends from a CSV file (columns: :data:`rows.SCHEDULE_COLUMNS`), each placed as
    an order of one line through :func:`delivery.place_order`, keyed ``giftq:schedule:...``."""
    progress = progress or _Silent()
    table = list(read_csv(path, rows.SCHEDULE_COLUMNS, rows.SCHEDULE_REQUIRED))
    report = ImportReport(rows=len(table), dry_run=dry_run)
    valid = _validate(
        table,
        parse=rows.schedule_row,
        content_key=lambda order: "sha256:" + request_hash(order),
        key_prefix="giftq:schedule:",
        report=report,
        progress=progress,
    )
    if report.errors:
        return report
    placed: dict[str, tuple[int, str]] = {}
    with sessions() as session:
        for chunk in _chunks(valid, _LOOKUP_CHUNK):
            keys = [v.key for v in chunk]
            placed.update(
                (key, (order_id, digest))
                for key, order_id, digest in session.execute(
                    select(Order.idempotency_key, Order.id, Order.request_hash).where(
                        Order.idempotency_key.in_(keys)
                    )
                )
            )
    new: list[_Valid[schemas.Order]] = []
    for v in valid:
        if v.key not in placed:
            new.append(v)
        elif placed[v.key][1] != request_hash(v.value):
            report.errors.append(
                RowError(v.row, "row_id", f"already placed as order {placed[v.key][0]} with other content")
            )
    if report.errors:
        return report
    report.already = len(valid) - len(new)
    report.added = len(new)
    if dry_run:
        return report
    progress.phase("placing orders", len(new))
    for chunk in _chunks(new, get_settings().import_batch_size):
        with sessions.begin() as session:
            for v in chunk:
                place_order(v.value, idempotency_key=v.key, session=session)
        progress.advance(len(chunk))
    return report


def report_json(report: ImportReport) -> str:
    return json.dumps(report.as_dict(), indent=2)
