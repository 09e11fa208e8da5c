"""Bad CSV files for ``giftq programs import`` and ``giftq schedule``, generated (hypothesis):
a valid row with one spoiled cell is reported by its spreadsheet row and column, and a file
that is not a CSV of the expected columns is refused as a whole (:class:`ImportRefused`);
either way nothing is written. Cells are written with the csv module, so line breaks inside
a quoted cell reach the validation as they would from a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import itertools
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import orm
from sqlalchemy.orm import sessionmaker

from delivery.orders import schemas
from delivery.programs import imports
from giftq.db import utcnow
from giftq.text import BIDI_CONTROLS
from ledger.marketplaces import MARKETPLACES
from tests.conftest import table_counts

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_files = itertools.count()

PROGRAM = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "birth_date": "1990-12-10",
    "zone": "Europe/London",
    "marketplace": "UK",
    "amount": "2500",
    "channel": "email",
    "purchaser_name": "Pat",
    "purchaser_email": "pat@example.com",
}
SCHEDULED = {
    "purchaser_name": "Pat",
    "purchaser_email": "pat@example.com",
    "channel": "email",
    "amount": "2500",
    "marketplace": "US",
    "recipient_name": "Robin",
    "recipient_email": "robin@example.com",
    "send_at": "2030-06-01T09:00",
    "zone": "America/New_York",
}

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
BAD_NAME = st.one_of(
    st.tuples(WORD, st.sampled_from(["\r\n", "\n", "\r", "\x00", "\x1b", *BIDI_CONTROLS]), WORD).map("".join),
    st.integers(101, 140).map(lambda n: "N" * n),
)
BAD_AMOUNT = st.one_of(
    st.integers(max_value=0).map(str),
    st.integers(min_value=schemas.MAX_AMOUNT + 1).map(str),
    st.sampled_from(["25.00", "2,500", "1e3", "twenty", "0x10", "+25", "\uff12\uff15\uff10\uff10"]),
)
BAD_EMAIL = st.one_of(
    st.text(alphabet="abc .,;<>", min_size=1, max_size=12).filter(lambda v: v.strip()),
    st.sampled_from(["robin@", "@example.com", "robin@example.com\r\nBcc: x@evil.example"]),
)
BAD_ZONE = st.text(min_size=1, max_size=30).filter(
    lambda v: v.strip() and v.strip() not in zoneinfo.available_timezones()
)
BAD_MARKETPLACE = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=3).filter(
    lambda v: v not in MARKETPLACES
)

PROGRAM_SPOILS = st.one_of(
    st.tuples(st.sampled_from(["name", "purchaser_name"]), BAD_NAME),
    st.tuples(st.sampled_from(["email", "purchaser_email"]), BAD_EMAIL),
    st.tuples(st.just("amount"), BAD_AMOUNT),
    st.tuples(st.just("zone"), BAD_ZONE),
    st.tuples(st.just("marketplace"), BAD_MARKETPLACE),
    st.tuples(st.just("channel"), st.sampled_from(["physical", "printable", "fax", "EMAIL"])),
    st.tuples(
        st.just("birth_date"), st.sampled_from(["1990-02-30", "10/12/1990", "3000-01-01", "yesterday"])
    ),
    st.tuples(st.just("send_time"), st.sampled_from(["24:00", "9am", "09:60", "9:00:00"])),
)
SCHEDULE_SPOILS = st.one_of(
    st.tuples(st.sampled_from(["recipient_name", "purchaser_name"]), BAD_NAME),
    st.tuples(st.sampled_from(["recipient_email", "purchaser_email"]), BAD_EMAIL),
    st.tuples(st.just("amount"), BAD_AMOUNT),
    st.tuples(st.just("zone"), BAD_ZONE),
    st.tuples(st.just("marketplace"), BAD_MARKETPLACE),
    st.tuples(
        st.just("send_at"),
        st.sampled_from(["2030-06-01", "2030-13-01T09:00", "tomorrow", "2030-06-01T09:00Z"]),
    ),
    st.tuples(st.just("channel"), st.sampled_from(["physical", "fax"])),
)


def write_csv(tmp_path: Path, row: dict[str, str]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    path = tmp_path / f"rows-{next(_files)}.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def importers(Session: sessionmaker[orm.Session]) -> dict[str, Any]:
    return {
        "programs": lambda path: imports.import_programs(Session, path, now=utcnow()),
        "schedule": lambda path: imports.schedule(Session, path),
    }


@SETTINGS
@given(spoiled=PROGRAM_SPOILS)
def test_a_program_row_with_a_bad_cell_is_reported_by_row_and_column(
    Session: sessionmaker[orm.Session], importers: Any, tmp_path: Path, spoiled: tuple[str, str]
) -> None:
    column, value = spoiled
    before = table_counts(Session)
    report = importers["programs"](write_csv(tmp_path, PROGRAM | {column: value}))
    assert (2, column) in [(e.row, e.column) for e in report.errors], (value, report.errors)
    assert report.added == 0
    assert table_counts(Session) == before


@SETTINGS
@given(spoiled=SCHEDULE_SPOILS)
def test_a_scheduled_send_with_a_bad_cell_is_reported_by_row_and_column(
    Session: sessionmaker[orm.Session], importers: Any, tmp_path: Path, spoiled: tuple[str, str]
) -> None:
    column, value = spoiled
    before = table_counts(Session)
    report = importers["schedule"](write_csv(tmp_path, SCHEDULED | {column: value}))
    assert (2, column) in [(e.row, e.column) for e in report.errors], (value, report.errors)
    assert report.added == 0
    assert table_counts(Session) == before


@SETTINGS
@given(
    which=st.sampled_from(["programs", "schedule"]),
    data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
)
def test_a_file_of_anything_else_is_refused_whole_and_writes_nothing(
    Session: sessionmaker[orm.Session], importers: Any, tmp_path: Path, which: str, data: bytes
) -> None:
    path = tmp_path / f"junk-{next(_files)}.csv"
    path.write_bytes(data)
    before = table_counts(Session)
    try:
        report = importers[which](path)
    except imports.ImportRefused as refused:
        assert str(refused)
    else:
        assert not report.ok or report.rows == 0, report
        assert report.added == 0
    assert table_counts(Session) == before
