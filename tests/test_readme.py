"""The README tells the truth about the code.

- Every ```python block runs as written, in a fresh data dir after ``giftq db upgrade``;
  a failure names the block's line in README.md (tracebacks point into README.md too).
- Every ``giftq ...`` command in a ```sh block names a real command, real options and
  values they accept.
- The configuration table lists every setting of :class:`giftq.settings.Settings`, only
  those, each with its true default (the conventions are spelled out above the table).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from delivery.cli import app
from giftq.settings import PROJECT_ROOT, Settings, reset_settings, variable
from ledger.codes import text as code_text

README = Path(__file__).resolve().parents[1] / "README.md"
GIFTQ = str(Path(sys.executable).with_name("giftq"))

# Variables the tests read; they configure the test run, not giftq.
TEST_VARIABLES = {"GIFTQ_TEST_POSTGRES_URL", "GIFTQ_TEST_REDIS_URL", "GIFTQ_REQUIRE_SERVICES"}


@dataclass(frozen=True)
class Block:
    line: int
    """README.md line of the block's first line of code."""
    code: str

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def blocks(language: str) -> list[Block]:
    found: list[Block] = []
    lines = README.read_text().splitlines()
    opening = f"```{language}"
    i = 0
    while i < len(lines):
        if lines[i].strip() == opening:
            start = i + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            found.append(Block(start + 1, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return found


def clean_environment(data_dir: Path) -> dict[str, str]:
    """A new user's environment: no GIFTQ_* but a fresh data dir, and no real broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_") or k in TEST_VARIABLES}
    env["GIFTQ_DATA_DIR"] = str(data_dir)
    # Storefront examples publish after commit; keep that in the process (the shared
    # Redis belongs to other test runs). Nothing in the examples depends on it.
    env["GIFTQ_BROKER_URL"] = "memory://"
    return env


# --- ```python blocks ---------------------------------------------------------------------

# Compiled under the name README.md with the block at its own line numbers.
_RUN_AT_README_LINES = (
    "import sys\n"
    "source = sys.stdin.read()\n"
    "exec(compile(source, 'README.md', 'exec'), {'__name__': '__main__'})\n"
)


def test_the_readme_has_python_examples() -> None:
    assert len(blocks("python")) >= 2


@pytest.mark.parametrize("block", blocks("python"), ids=str)
def test_python_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    env = clean_environment(tmp_path / "var")
    upgraded = subprocess.run(
        [GIFTQ, "db", "upgrade"],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert upgraded.returncode == 0, upgraded.stderr

    ran = subprocess.run(
        [sys.executable, "-c", _RUN_AT_README_LINES],
        check=False,
        input="\n" * (block.line - 1) + block.code,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert ran.returncode == 0, f"the ```python block at README.md line {block.line} failed:\n{ran.stderr}"


def test_codes_shown_in_the_readme_pass_their_check() -> None:
    shown = re.findall(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b", README.read_text())
    examples = [code for code in shown if code != "XXXX-XXXX-XXXX-XXXXX"]  # the format itself
    assert examples
    for code in examples:
        code_text.normalize(code)  # raises CodeMistyped for a code that fails its check character


# --- giftq commands in ```sh blocks ----------------------------------------------------------


@dataclass(frozen=True)
class Command:
    line: int
    argv: tuple[str, ...]
    """After ``giftq``, environment assignments dropped."""

    def __str__(self) -> str:
        return f"README.md:{self.line}:{' '.join(self.argv[:2])}"


def giftq_commands() -> list[Command]:
    found = []
    for block in blocks("sh"):
        for offset, text in enumerate(block.code.splitlines()):
            words = shlex.split(text, comments=True)
            # Commands joined by && or ; on one line are each a command.
            command: list[str] = []
            for word in [*words, ";"]:
                if word not in ("&&", "||", ";", "|"):
                    command.append(word)
                    continue
                while command and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", command[0]):
                    command.pop(0)
                if command and Path(command[0]).name == "giftq":
                    found.append(Command(block.line + offset, tuple(command[1:])))
                command = []
    return found


def test_the_readme_shows_giftq_commands() -> None:
    shown = {c.argv[0] for c in giftq_commands()}
    assert {"demo", "db", "ops", "smtp-sink"} <= shown


def test_giftq_is_installed_as_a_command() -> None:
    ran = subprocess.run([GIFTQ, "--help"], check=False, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize("command", giftq_commands(), ids=str)
def test_giftq_command_is_real(command: Command) -> None:
    where = f"README.md line {command.line}: giftq {' '.join(command.argv)}"
    # Command and option names: click stops at --help only when all of them exist.
    helped = CliRunner().invoke(app, [*command.argv, "--help"])
    assert helped.exit_code == 0, f"{where}\n{helped.output}"

    # Values and the number of arguments: parse them as the command would, without running it.
    # (Duck-typed: typer may bring click or a copy of its own.)
    command_: Any = typer.main.get_command(app)
    args = list(command.argv)
    path = ["giftq"]
    while hasattr(command_, "list_commands") and command_.list_commands(typer.Context(command_)):
        while args and args[0].startswith("-"):
            args.pop(0)  # the top-level flags (-v)
        name = args.pop(0)
        found = command_.get_command(typer.Context(command_), name)
        assert found is not None, f"{where}: no command {name}"
        path.append(name)
        command_ = found
    try:
        command_.make_context(" ".join(path), args)
    except Exception as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"{where}: {message}")


# --- the configuration table ------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    line: int
    variable: str
    default: str

    def __str__(self) -> str:
        return f"README.md:{self.line}:{self.variable}"


def configuration_rows() -> list[Row]:
    """Rows of every ``| variable | default | meaning |`` table under ``## Configuration``."""
    lines = README.read_text().splitlines()
    start = lines.index("## Configuration")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    rows = []
    in_table = False
    for number in range(start, end):
        cells = [c.strip() for c in lines[number].strip().strip("|").split("|")]
        if not lines[number].startswith("|"):
            in_table = False
        elif cells[:3] == ["variable", "default", "meaning"]:
            in_table = True
        elif in_table and not set(lines[number]) <= set("|-: "):
            rows.append(Row(number + 1, cells[0].strip("`"), cells[1]))
    return rows


ROWS = configuration_rows()
FIELDS = {variable(name): name for name in Settings.model_fields}

# What a *computed* default's placeholders stand for.
PLACEHOLDERS = {"<data dir>": lambda s: str(s.data_dir), "<source>": lambda s: str(PROJECT_ROOT)}
# A computed default is the value the code ends up using, which is not always the field.
EFFECTIVE = {"database_url": lambda s: s.sqlalchemy_url}


@pytest.fixture
def no_giftq_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GIFTQ_") and name not in TEST_VARIABLES:
            monkeypatch.delenv(name)
    reset_settings()


def test_each_row_names_one_variable() -> None:
    assert ROWS, "no configuration table under ## Configuration"
    bad = [str(row) for row in ROWS if not re.fullmatch(r"GIFTQ_[A-Z0-9_]+", row.variable)]
    assert not bad, f"one `GIFTQ_...` variable per row: {bad}"


def test_every_setting_is_documented_once() -> None:
    documented = [row.variable for row in ROWS]
    missing = sorted(set(FIELDS) - set(documented))
    assert not missing, f"add these to the README's configuration table: {', '.join(missing)}"
    twice = sorted({v for v in documented if documented.count(v) > 1})
    assert not twice, f"documented more than once: {twice}"


def test_every_documented_variable_is_a_setting() -> None:
    unknown = [str(row) for row in ROWS if row.variable not in FIELDS]
    assert not unknown, f"no such setting: {unknown}"


def test_every_variable_the_readme_names_exists() -> None:
    for number, text in enumerate(README.read_text().splitlines(), 1):
        for name in re.findall(r"GIFTQ_[A-Z0-9_]*[A-Z0-9*]", text):
            if name.endswith("*"):  # GIFTQ_DKIM_*: a family of settings
                assert any(v.startswith(name[:-1]) for v in FIELDS), f"README.md line {number}: {name}"
            else:
                assert name in FIELDS or name in TEST_VARIABLES, f"README.md line {number}: no {name}"


def test_defaults_quoted_in_the_text_are_the_code_defaults() -> None:
    """``(`GIFTQ_X`, 500)`` or ``` `GIFTQ_X` (300 s)``` in prose: the number is the default."""
    quoted = re.compile(r"`(GIFTQ_[A-Z0-9_]+)`(?:, | \()(\d+(?:\.\d+)?)( ?%)?")
    seen = 0
    for number, text in enumerate(README.read_text().splitlines(), 1):
        for name, value, percent in quoted.findall(text):
            default = Settings.model_fields[FIELDS[name]].default
            said = float(value) / 100 if percent else float(value)
            assert said == default, f"README.md line {number}: {name} is {default} in the code, not {value}"
            seen += 1
    assert seen >= 5


@pytest.mark.parametrize("row", [r for r in ROWS if r.variable in FIELDS], ids=str)
def test_documented_default_is_the_code_default(
    row: Row, no_giftq_variables: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # relative defaults (the data dir) resolve here
    field = FIELDS[row.variable]
    default = Settings()
    literal = re.fullmatch(r"`([^`]*)`", row.default)
    computed = re.fullmatch(r"\*computed\*: `([^`]*)`", row.default)

    if literal:
        # Written into the variable, the documented value gives what leaving it unset gives.
        monkeypatch.setenv(row.variable, literal.group(1))
        assert _value(Settings(), field) == _value(default, field), row
    elif computed:
        expected = computed.group(1)
        for placeholder, value in PLACEHOLDERS.items():
            expected = expected.replace(placeholder, value(default))
        assert str(EFFECTIVE.get(field, lambda s: getattr(s, field))(default)) == expected, row
    elif row.default.startswith("*unset*"):
        assert _value(default, field) in (None, ""), (
            f"{row}: the code has a default, {_value(default, field)!r}"
        )
    else:
        pytest.fail(f"{row}: a default is `value`, *computed*: `value with <placeholders>`, or *unset*")


def _value(settings: Settings, field: str) -> Any:
    value = getattr(settings, field)
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value
