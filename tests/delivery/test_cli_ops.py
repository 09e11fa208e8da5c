from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from delivery.cli import app
from delivery.models import Delivery, OrderLine
from giftq import migrate
from giftq.db import make_engine
from giftq.settings import reset_settings


def giftq(*args: str) -> Any:
    return CliRunner().invoke(app, ["ops", *args])


def test_order_and_card_are_shown_masked(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    order_id = issued_order()
    run_queued(Session)
    (code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    shown = giftq("order", str(order_id))
    assert shown.exit_code == 0, shown.output
    assert "SHOP-1001" in shown.output and "25.00 USD" in shown.output
    assert code[-4:] in shown.output and code not in shown.output
    assert "accepted" in shown.output
    with Session() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()
    card = giftq("card", str(card_id))
    assert card.exit_code == 0, card.output
    assert f"card {card_id} ••••-••••-••••-•{code[-4:]}: active" in card.output
    assert code not in card.output


def test_failures_replay_resend(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 unknown user"]
    issued_order()
    run_queued(Session)
    with Session() as s:
        failed = s.scalars(select(Delivery).where(Delivery.status == "failed_permanent")).one()
    listed = giftq("failures")
    assert "1 failed deliveries" in listed.output and "r0@example.com" in listed.output
    assert "r0@example.com" in giftq("suppressed").output

    refused = giftq("replay", str(failed.id))
    assert refused.exit_code == 1
    assert "suppressed" in refused.output
    assert giftq("unsuppress", "r0@example.com").output.strip() == "r0@example.com cleared"
    assert giftq("replay", "--all", "--yes").output.strip() == f"replayed 1: {failed.id}"
    assert giftq("replay").exit_code == 2

    # Queued again by the replay, it can still be redirected: the queued one is cancelled.
    resent = giftq("resend", str(failed.id), "--email", "fixed@example.com", "--yes")
    assert resent.exit_code == 0, resent.output
    assert "queued to fixed@example.com" in resent.output
    bad = giftq("resend", str(failed.id), "--email", "nope", "--yes")
    assert bad.exit_code == 1
    assert "email: " in bad.output


def test_reissue_cancel_and_sweep(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    order_id = issued_order()
    run_queued(Session)
    with Session() as s:
        line_id = s.scalars(select(OrderLine.id)).one()
    reissued = giftq("reissue", str(line_id), "--email", "right@example.com", "--yes")
    assert reissued.exit_code == 0, reissued.output
    assert "queued to right@example.com" in reissued.output
    cancelled = giftq("cancel", str(order_id), "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert f"cancelled order {order_id}: 1 deliveries stopped" in cancelled.output
    swept = giftq("sweep")
    assert swept.exit_code == 0 and "released 0 due deliveries" in swept.output


def test_unknown_ids_say_so(database_url: str) -> None:
    result = giftq("order", "999999")
    assert result.exit_code == 1
    assert "no order 999999" in result.output


# --- a data dir or database that is not what the code needs ---------------------------------

EVERY_COMMAND = [
    ["ops", "order", "1"],
    ["ops", "card", "1"],
    ["ops", "failures"],
    ["ops", "replay", "--all", "--yes"],
    ["ops", "resend", "1", "--email", "right@example.com", "--yes"],
    ["ops", "reissue", "1", "--yes"],
    ["ops", "cancel", "1", "--yes"],
    ["ops", "cancel", "1"],
    ["ops", "suppressed"],
    ["ops", "unsuppress", "right@example.com"],
    ["ops", "sweep"],
    ["ops", "audit"],
    ["ops", "card", "7K3M-Q9RT-ZX2B-PW4NP"],
    ["ops", "order", "SHOP-1001"],
    ["ledger", "balance", "customer-42", "--marketplace", "US"],
    ["ledger", "history", "customer-42", "--marketplace", "US"],
    ["ledger", "reconcile"],
    ["ledger", "void", "1", "--yes"],
    ["ledger", "activate", "1"],
]


def _previous_revision() -> str:
    down = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(migrate.head()).down_revision
    assert isinstance(down, str)
    return down


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_a_wrong_data_dir_is_named_and_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    typo = tmp_path / "vra"
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(typo))
    # Without secrets in the environment, nothing may generate them into the data dir either.
    monkeypatch.delenv("GIFTQ_CODE_PEPPER")
    monkeypatch.delenv("GIFTQ_CODE_KEYS")
    reset_settings()

    result = CliRunner().invoke(app, command)

    assert result.exit_code == 1, result.output
    assert result.output == f"error: no giftq database at {typo / 'giftq.sqlite3'} (run: giftq db upgrade)\n"
    assert not typo.exists()


def test_a_folder_that_holds_no_database_is_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_") or k.startswith("GIFTQ_TEST_")}
    env["GIFTQ_DATA_DIR"] = str(folder)

    # The installed command, as an operator runs it: one line, no traceback.
    ran = subprocess.run(
        [str(Path(sys.executable).with_name("giftq")), "ops", "order", "17"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert ran.returncode == 1
    assert ran.stdout == ""
    assert ran.stderr == f"error: no giftq database at {folder / 'giftq.sqlite3'} (run: giftq db upgrade)\n"
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_an_empty_database_is_told_to_upgrade(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    result = giftq("failures")
    assert result.exit_code == 1
    assert (
        result.output
        == f"error: no giftq database at {migrate.where(database_url)} (run: giftq db upgrade)\n"
    )


def test_a_database_behind_the_code_is_told_to_upgrade(database_url: str) -> None:
    previous = _previous_revision()
    migrate.downgrade(database_url, previous)
    result = giftq("order", "1")
    assert result.exit_code == 1
    assert result.output == (
        f"error: the giftq database at {migrate.where(database_url)} is at revision {previous}; "
        f"the code's head is {migrate.head()} (run: giftq db upgrade)\n"
    )


def test_a_database_from_newer_code_is_not_told_to_upgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    result = giftq("order", "1")
    assert result.exit_code == 1
    assert "is at revision 9999, which this code does not know" in result.output
    assert "giftq db upgrade" not in result.output
    assert len(result.output.splitlines()) == 1


def test_a_postgresql_database_that_does_not_exist_is_named(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = make_url(pg_url).set(database=f"{make_url(pg_url).database}_missing")
    monkeypatch.setenv("GIFTQ_DATABASE_URL", missing.render_as_string(hide_password=False))
    reset_settings()
    result = giftq("failures")
    assert result.exit_code == 1
    assert result.output.startswith(f"error: cannot open the giftq database at {missing}: ")
    assert "does not exist" in result.output
    assert len(result.output.splitlines()) == 1


def test_a_bad_setting_is_one_line_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "30,soon")
    reset_settings()
    result = giftq("failures")
    assert result.exit_code == 2
    assert result.output.startswith("error: GIFTQ_RETRY_SCHEDULE_SECONDS item 2: ")
    assert len(result.output.splitlines()) == 1
