from __future__ import annotations

import logging
import sys

import pytest

from delivery.logs import configure_logging
from ledger.codes import ClaimCode
from ledger.codes.redact import RedactClaimCodes, redact


@pytest.mark.parametrize(
    "shape", [lambda c: c.reveal(), lambda c: c.normalized, lambda c: c.reveal().lower().replace("-", " ")]
)
def test_any_written_form_of_a_code_is_masked(shape) -> None:  # type: ignore[no-untyped-def]
    code = ClaimCode.generate()
    written = shape(code)
    cleaned = redact(f"customer typed {written} at checkout")
    assert written not in cleaned
    assert code.normalized not in cleaned.upper().replace("-", "").replace(" ", "")
    assert cleaned.upper().endswith(f"{code.last4} AT CHECKOUT")


def test_long_numbers_and_uuids_that_are_not_codes_are_left_alone() -> None:
    # A 17-digit number passes the check character one time in 32; pick ones that do not.
    numbers = [str(10**16 + i) for i in range(200)]
    kept = [n for n in numbers if redact(n) == n]
    assert len(kept) > 150
    uuid = "0b7a3a0c-1e1d-4e8e-9d3b-0e4b6b1f2a3c"
    assert redact(uuid) == uuid


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
