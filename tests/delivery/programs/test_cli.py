"""``giftq programs`` and ``giftq schedule`` on both engines, run on the README's example
files: rows checked first, errors by row and column with nothing written, a second run adds
nothing, ``--dry-run`` writes nothing, ``--json`` for scripts, confirmation before ending."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from delivery.cli import app
from delivery.models import Order, OrderLine
from delivery.programs.models import BirthdayProgram, ProgramStatus
from giftq.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "docs" / "examples"
PROGRAMS_CSV = EXAMPLES / "birthday-programs.csv"
SCHEDULE_CSV = EXAMPLES / "schedule.csv"
PROGRAM_HEADER = (
    "name,email,phone,birth_date,zone,send_time,marketplace,amount,channel,design,message,"
    "purchaser_name,purchaser_email\n"
)


def giftq(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def count(Session: sessionmaker[Session], model: Any) -> int:
    with Session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_programs_import_of_the_example_file(Session: sessionmaker[Session]) -> None:
    dry = giftq("programs", "import", str(PROGRAMS_CSV), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would add 4 programs" in dry.output and count(Session, BirthdayProgram) == 0
    first = giftq("programs", "import", str(PROGRAMS_CSV))
    assert first.exit_code == 0, first.output
    assert "added 4 programs, 0 already there" in first.output
    again = giftq("programs", "import", str(PROGRAMS_CSV), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output) == {"rows": 4, "added": 0, "already": 4, "dry_run": False, "errors": []}
    assert count(Session, BirthdayProgram) == 4
    listed = giftq("programs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    by_name = {p["name"]: p for p in json.loads(listed.output)}
    larry = by_name["Leap Day Larry"]
    assert (larry["birth_date"], larry["zone"], larry["amount"], larry["channel"]) == (
        "1996-02-29",
        "America/New_York",
        5000,
        "email",
    )
    assert larry["purchaser"] == {"name": "Grace Hopper", "email": "grace@example.com"}
    robin = by_name["Robin Text"]
    assert (robin["phone"], robin["channel"], robin["send_time"]) == ("+14155550123", "sms", "02:30")
    jorg = by_name["Jörg Bücher"]  # empty cells take the defaults
    assert (jorg["send_time"], jorg["design"], jorg["message"]) == (
        "09:00",
        "birthday",
        "Happy birthday, {name}!",
    )
    table = giftq("programs", "list")
    assert table.exit_code == 0, table.output
    assert "4 birthday programs" in table.output and "50.00 USD" in table.output


def test_schedule_of_the_example_file(Session: sessionmaker[Session]) -> None:
    dry = giftq("schedule", str(SCHEDULE_CSV), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would add 3 sends" in dry.output and count(Session, Order) == 0
    first = giftq("schedule", str(SCHEDULE_CSV))
    assert first.exit_code == 0, first.output
    assert "added 3 sends, 0 already there" in first.output
    again = giftq("schedule", str(SCHEDULE_CSV), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["already"] == 3
    with Session() as s:
        got = {
            o.idempotency_key: (line.channel, line.amount, line.due_at, line.message)
            for o, line in s.execute(select(Order, OrderLine).join(OrderLine, OrderLine.order_id == Order.id))
        }
    assert got["giftq:schedule:row:thanks-001"][:3] == (
        "email",
        5000,
        dt.datetime(2031, 12, 19, 14, tzinfo=dt.UTC),
    )
    assert got["giftq:schedule:row:thanks-002"][:3] == (
        "sms",
        2500,
        dt.datetime(2031, 12, 19, 17, tzinfo=dt.UTC),
    )
    assert got["giftq:schedule:row:thanks-003"][3] == "Frohe Festtage!\nDanke für alles."
    assert len(got) == 3


def test_a_bad_file_names_each_bad_cell_and_writes_nothing(
    Session: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "programs.csv"
    path.write_text(
        PROGRAM_HEADER
        + "Ada,ada@example.com,,1990-12-10,Europe/London,,UK,2500,email,,,Grace,grace@example.com\n"
        + "Bo,bo@example,,1990-13-01,Mars/Olympus,25:00,XX,25.00,fax,,Hi {nam},Grace,grace@example.com\n"
        + "Cy,,,1990-01-01,UTC,,US,100,sms,,,Grace,grace@example.com\n"
        + "Ada,ada@example.com,,1990-12-10,Europe/London,,UK,2500,email,,,Grace,grace@example.com\n"
    )
    result = giftq("programs", "import", str(path))
    assert result.exit_code == 1
    for expected in (
        "row 3, column email: not a valid email address",
        "row 3, column birth_date:",
        "row 3, column zone: unknown time zone 'Mars/Olympus'",
        "row 3, column send_time: must be a local time like 09:00",
        "row 3, column marketplace: unknown marketplace",
        "row 3, column amount: must be a whole number of minor units",
        "row 3, column channel: must be email or sms",
        "row 3, column message: names {nam}",
        "row 4, column phone: required for channel sms",
        "row 5, column row_id: the same row as row 2",
        "nothing written",
    ):
        assert expected in result.output, result.output
    assert count(Session, BirthdayProgram) == 0
    as_json = giftq("programs", "import", str(path), "--json")
    assert as_json.exit_code == 1
    assert {"row": 4, "column": "phone", "reason": "required for channel sms"} in json.loads(as_json.output)[
        "errors"
    ]


def test_schedule_errors_name_the_csv_columns(Session: sessionmaker[Session], tmp_path: Path) -> None:
    header = SCHEDULE_CSV.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "schedule.csv"
    path.write_text(
        header + "\n"
        "r1,Grace,grace@example.com,,email,5000,US,,,Ada,ada@,,2031-12-19T09:00,America/New_York\n"
        "r2,Grace,grace@example.com,,sms,5000,US,,,Bo,,+15555550100x,2031-13-19T09:00,Europe/Nowhere\n"
        "r3,Grace,grace@example.com,,email,5000,US,,,Cy,cy@example.com,,2031-12-19T09:00,UTC\n",
        encoding="utf-8",
    )
    result = giftq("schedule", str(path))
    assert result.exit_code == 1
    for expected in (
        "row 2, column recipient_email:",
        "row 3, column recipient_phone:",
        "row 3, column send_at:",
        "row 3, column zone: unknown time zone",
    ):
        assert expected in result.output, result.output
    assert "row 4" not in result.output
    assert count(Session, Order) == 0
    # A row_id placed before with other content is a conflict, reported before anything is placed.
    good = tmp_path / "good.csv"
    good.write_text(
        header + "\nr3,Grace,grace@example.com,,email,5000,US,,,Cy,cy@example.com,,2031-12-19T09:00,UTC\n"
    )
    assert giftq("schedule", str(good)).exit_code == 0
    changed = tmp_path / "changed.csv"
    changed.write_text(
        header + "\n"
        "r4,Grace,grace@example.com,,email,100,US,,,Di,di@example.com,,2031-12-19T09:00,UTC\n"
        "r3,Grace,grace@example.com,,email,9999,US,,,Cy,cy@example.com,,2031-12-19T09:00,UTC\n"
    )
    conflict = giftq("schedule", str(changed))
    assert conflict.exit_code == 1
    assert "row 3, column row_id: already placed as order" in conflict.output
    assert count(Session, Order) == 1


def test_rows_without_row_id_are_keyed_by_their_content(
    Session: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "programs.csv"
    path.write_text(
        PROGRAM_HEADER
        + "Ada,ada@example.com,,1990-12-10,Europe/London,,UK,2500,email,,,Grace,grace@example.com\n"
    )
    assert "added 1 programs" in giftq("programs", "import", str(path)).output
    # The same person written differently (spaces around cells) is the same row.
    path.write_text(
        PROGRAM_HEADER
        + "Ada , ada@example.com,,1990-12-10,Europe/London,,UK,2500,email,,,Grace,grace@example.com\n"
    )
    assert "added 0 programs, 1 already there" in giftq("programs", "import", str(path)).output
    assert count(Session, BirthdayProgram) == 1


def test_a_file_of_the_wrong_shape_is_refused(Session: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "programs.csv"
    path.write_text("name,email,colour\nAda,ada@example.com,red\n")
    result = giftq("programs", "import", str(path))
    assert result.exit_code == 1
    assert "row 1: missing columns: birth_date" in result.output
    assert "unknown columns: colour" in result.output


def test_pause_resume_change_end(Session: sessionmaker[Session]) -> None:
    assert giftq("programs", "import", str(PROGRAMS_CSV)).exit_code == 0
    with Session() as s:
        program = s.scalars(select(BirthdayProgram).where(BirthdayProgram.name == "Ada Lovelace")).one()
    pid = str(program.id)
    paused = giftq("programs", "pause", pid, "--json")
    assert paused.exit_code == 0 and json.loads(paused.output)["status"] == "paused"
    resumed = giftq("programs", "resume", pid, "--json")
    assert resumed.exit_code == 0 and json.loads(resumed.output)["status"] == "active"
    declined = giftq("programs", "change", pid, "--amount", "5000", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    changed = giftq("programs", "change", pid, "--amount", "5000", "--send-time", "18:30", "--yes", "--json")
    assert changed.exit_code == 0, changed.output
    assert (json.loads(changed.output)["amount"], json.loads(changed.output)["send_time"]) == (5000, "18:30")
    bad = giftq("programs", "change", pid, "--email", "nobody", "--yes")
    assert bad.exit_code == 1 and "error: invalid program: email:" in bad.output
    kept = giftq("programs", "end", pid, input="n\n")
    assert kept.exit_code == 1
    ended = giftq("programs", "end", pid, input="y\n")
    assert ended.exit_code == 0, ended.output
    with Session() as s:
        assert s.get(BirthdayProgram, program.id).status == ProgramStatus.ENDED  # type: ignore[union-attr]
    again = giftq("programs", "resume", pid)
    assert again.exit_code == 1 and f"error: birthday program {pid} has ended" in again.output
    shown = giftq("programs", "show", pid, "--json")
    assert shown.exit_code == 0 and json.loads(shown.output)["placements"] == []
    missing = giftq("programs", "show", "999999")
    assert missing.exit_code == 1 and "error: no birthday program 999999" in missing.output
    assert giftq("programs", "skipped", "--json").output.strip() == "[]"


@pytest.mark.parametrize("command", [["programs", "list"], ["programs", "skipped"]])
def test_tables_read_without_json(Session: sessionmaker[Session], command: list[str]) -> None:
    result = giftq(*command)
    assert result.exit_code == 0, result.output
