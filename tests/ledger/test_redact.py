from __future__ import annotations

import hashlib
import itertools
import logging
import sys
import unicodedata
import uuid
from collections.abc import Callable

import pytest

from delivery.logs import configure_logging
from ledger.codes import ClaimCode, code_text
from ledger.codes.redact import RedactClaimCodes, redact

SHAPES: dict[str, Callable[[ClaimCode], str]] = {
    "grouped": lambda c: c.reveal(),
    "ungrouped": lambda c: c.normalized,
    "grouped, lower case": lambda c: c.reveal().lower(),
    "ungrouped, lower case": lambda c: c.normalized.lower(),
    "spaced, lower case": lambda c: c.reveal().lower().replace("-", " "),
    "en dashes": lambda c: c.reveal().replace("-", "\N{EN DASH}"),
    "no-break spaces": lambda c: c.reveal().replace("-", "\N{NO-BREAK SPACE}"),
    "full-width": lambda c: "".join(chr(ord(s) + 0xFEE0) for s in c.reveal()),
    "O for 0, L for 1": lambda c: c.reveal().replace("0", "O").replace("1", "L"),
}
CONTEXTS = [
    "{}",
    "{} at the start of a line",
    "at the end of a line: {}",
    '{"code": "{}", "card_id": 17}',
    "{'code': '{}'}",
    "POST /redeem body code={}&account=alice",
    "customer typed ({}).",
    "first line\n{}\nlast line",
    "key redeem-{}-retry",
    "code_{}_x",
]


def exposed(code: ClaimCode, text: str) -> bool:
    """Whether more than the last four characters of ``code`` can be read in ``text``."""
    flat = unicodedata.normalize("NFKC", text).upper().replace("O", "0").replace("L", "1")
    flat = "".join(ch for ch in flat if ch.isalnum())
    return code.normalized[:-4] in flat


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_every_written_form_of_a_code_is_masked_anywhere_in_a_line(
    shape: Callable[[ClaimCode], str], context: str
) -> None:
    code = ClaimCode.generate()
    written = shape(code)
    line = context.replace("{}", written)
    assert exposed(code, line)
    cleaned = redact(line)
    assert not exposed(code, cleaned), cleaned
    assert cleaned == line.replace(written, code.masked), "only the code changes"


def test_several_codes_in_one_message_are_all_masked() -> None:
    codes = [ClaimCode.generate() for _ in range(5)]
    line = " ".join(c.reveal() if i % 2 else c.normalized.lower() for i, c in enumerate(codes))
    cleaned = redact(line)
    assert cleaned == " ".join(c.masked for c in codes)


def float_digits(check: str, start: int = 123456789012345) -> str:
    """16 digits that, with ``check`` after them, pass a code's check character."""
    candidates = (f"{n:016d}" for n in itertools.count(start))
    return next(d for d in candidates if code_text.check_symbol(d) == check)


def test_a_celery_run_time_is_not_a_code() -> None:
    # Celery logs "succeeded in %(runtime)ss": a float's 16 digits and the "s" of seconds
    # are 17 symbols, and one float in 32 passes the check character.
    digits = float_digits("S")
    runtime = float(f"0.{digits}")
    assert repr(runtime) == f"0.{digits}"
    record = logging.LogRecord(
        "celery.app.trace",
        logging.INFO,
        __file__,
        1,
        "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
        {"name": "giftq.send_batch", "id": str(uuid.uuid4()), "runtime": runtime, "return_value": None},
        None,
    )
    message = record.getMessage()
    assert f"succeeded in 0.{digits}s: None" in message
    assert RedactClaimCodes().filter(record)
    assert record.getMessage() == message


def test_realistic_strings_that_are_not_codes_are_left_alone() -> None:
    # 17-digit numbers (an id, a yyyymmddhhmmssfff timestamp) that pass the check character.
    seventeen_digits = [float_digits(c, 10**15 + 7919 * i) + c for i, c in enumerate("0123456789")]
    not_codes = [
        "Task giftq.send_batch[0b7a3a0c-1e1d-4e8e-9d3b-0e4b6b1f2a3c] succeeded in 0.0123456789012345s: None",
        f"succeeded in 0.{float_digits('S')}s: None",
        f"took 1.{float_digits('E')}e-05 s",
        f"ratio 0.{seventeen_digits[3]}",
        "GQ-1234",
        "order GQ-2024-000123 line 3",
        "2024-03-01T12:34:56.123456+00:00",
        "2024-03-01 12:34:56,789 INFO delivery.dispatch",
        "1709296496.123456789",
        "1709296496123456789",
        *seventeen_digits,
        *(f"id={n}" for n in seventeen_digits),
        *(str(10**19 + 7919 * i) for i in range(200)),
        *(str(uuid.uuid4()) for _ in range(300)),
        *(str(uuid.uuid4()).upper() for _ in range(50)),
        *(uuid.uuid4().hex for _ in range(100)),
        *(hashlib.sha256(str(i).encode()).hexdigest() for i in range(200)),
        *(f"sha256:{hashlib.sha256(str(i).encode()).hexdigest().upper()}" for i in range(50)),
        *(hashlib.md5(str(i).encode(), usedforsecurity=False).hexdigest() for i in range(100)),
    ]
    # Premise: each 17-digit number above passes the check character, as a code would.
    assert all(code_text.normalize(n) == n for n in seventeen_digits)
    changed = [text for text in not_codes if redact(text) != text]
    assert changed == []


def test_a_code_among_non_codes_is_the_only_thing_masked() -> None:
    code = ClaimCode.generate()
    task_id = str(uuid.uuid4())
    line = (
        f"Task giftq.redeem[{task_id}] succeeded in 0.{float_digits('S')}s: "
        f'{{"code": "{code.reveal()}", "order": "GQ-1234", "at": "2024-03-01T12:34:56Z"}}'
    )
    assert redact(line) == line.replace(code.reveal(), code.masked)


def test_a_run_of_17_symbols_is_masked_only_if_its_check_character_matches() -> None:
    code = ClaimCode.generate()
    wrong = code.normalized[:-1] + ("X" if code.normalized[-1] != "X" else "Y")
    assert redact(f"typed {wrong}") == f"typed {wrong}"
    assert redact(f"typed {code.normalized}") == f"typed {code.masked}"


def test_filter_masks_messages_arguments_and_tracebacks() -> None:
    code = ClaimCode.generate().reveal()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "redeeming %s", (code,), None)
    try:
        raise ValueError(f"bad {code}")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactClaimCodes().filter(record)
    assert code not in record.getMessage()
    assert record.exc_text is not None and code not in record.exc_text
    assert "ValueError" in record.exc_text


def test_configure_logging_installs_the_filter_on_every_root_handler() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        configure_logging(logging.INFO)
        assert any(isinstance(f, RedactClaimCodes) for f in handler.filters)
    finally:
        root.removeHandler(handler)
