"""The failure policy of text messages, table by table."""

from __future__ import annotations

import httpx
import pytest

from delivery.channels.sms import classify_answer, classify_report, classify_unreachable
from delivery.channels.sms.failures import API_ERRORS, REPORT_ERRORS, meaning, provider_text
from delivery.reasons import FailureReason as Why
from delivery.retry import FailureKind
from ledger.codes import text as code_text

R, P = FailureKind.RETRYABLE, FailureKind.PERMANENT


@pytest.mark.parametrize(
    ("http_status", "error_code", "kind", "reason", "suppress"),
    [
        (429, 20429, R, Why.UNREACHABLE, False),  # too many requests
        (429, None, R, Why.UNREACHABLE, False),
        (500, 20500, R, Why.UNREACHABLE, False),
        (500, None, R, Why.UNREACHABLE, False),
        (502, None, R, Why.UNREACHABLE, False),
        (503, 20503, R, Why.UNREACHABLE, False),
        (400, 21211, P, Why.UNDELIVERABLE, False),  # invalid To
        (400, 21614, P, Why.UNDELIVERABLE, False),  # not a mobile number
        (400, 21612, P, Why.UNDELIVERABLE, False),  # cannot route to it by SMS
        (400, 21635, P, Why.UNDELIVERABLE, False),  # landline
        (400, 21610, P, Why.OPTED_OUT, True),  # replied STOP: suppress until ops clear it
        (400, 21602, P, Why.UNRENDERABLE, False),  # no body: our bug
        (400, 21617, P, Why.UNRENDERABLE, False),  # body too long: our bug
        # Our configuration: hold the queue for ops, do not fail the gift.
        (401, 20003, R, Why.UNREACHABLE, False),
        (404, 20404, R, Why.UNREACHABLE, False),
        (400, 21212, R, Why.UNREACHABLE, False),
        (400, 21408, R, Why.UNREACHABLE, False),
        (400, 21606, R, Why.UNREACHABLE, False),
        # Unknown 4xx: the request is wrong, retrying cannot fix it.
        (400, 29999, P, Why.REFUSED, False),
        (400, None, P, Why.REFUSED, False),
        (403, None, P, Why.REFUSED, False),
        # "Created" without a SID: retry is the safer mistake.
        (201, None, R, Why.UNREACHABLE, False),
    ],
)
def test_api_answers(
    http_status: int, error_code: int | None, kind: FailureKind, reason: Why, suppress: bool
) -> None:
    failure = classify_answer(http_status, error_code, "provider words")
    assert (failure.kind, failure.reason, failure.suppress) == (kind, reason, suppress)
    assert failure.code == (error_code if error_code is not None else http_status)
    assert str(http_status) in failure.detail


@pytest.mark.parametrize(
    ("status", "error_code", "kind", "reason", "suppress"),
    [
        ("undelivered", 30003, R, Why.UNREACHABLE, False),  # handset off or out of coverage
        ("undelivered", 30006, P, Why.UNDELIVERABLE, False),  # landline / unreachable carrier
        ("undelivered", 30004, P, Why.REFUSED, False),  # blocked
        ("undelivered", 30005, P, Why.UNDELIVERABLE, False),  # unknown handset
        ("undelivered", 30007, P, Why.REFUSED, False),  # carrier filtering
        ("undelivered", 30008, R, Why.UNREACHABLE, False),  # unknown carrier error
        ("failed", 30001, R, Why.UNREACHABLE, False),  # queue overflow
        ("failed", 21610, P, Why.OPTED_OUT, True),  # a refusal the API can also give, by callback
        ("failed", 21211, P, Why.UNDELIVERABLE, False),
        ("undelivered", 39999, R, Why.UNREACHABLE, False),  # unknown: retry, bounded by the schedule
        ("failed", None, R, Why.UNREACHABLE, False),
    ],
)
def test_status_reports(
    status: str, error_code: int | None, kind: FailureKind, reason: Why, suppress: bool
) -> None:
    failure = classify_report(status, error_code)
    assert failure is not None
    assert (failure.kind, failure.reason, failure.suppress, failure.code) == (
        kind,
        reason,
        suppress,
        error_code,
    )


@pytest.mark.parametrize(
    "status", ["queued", "accepted", "sending", "sent", "delivered", "read", "canceled", "scheduled"]
)
def test_reports_that_are_not_failures(status: str) -> None:
    assert classify_report(status, None) is None
    assert classify_report(status, 30003) is None


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        TimeoutError(),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_no_answer_is_retryable(error: BaseException) -> None:
    failure = classify_unreachable(error)
    assert (failure.kind, failure.code, failure.reason, failure.suppress) == (R, None, Why.UNREACHABLE, False)
    assert type(error).__name__ in failure.detail


def test_timeouts_are_named_as_such() -> None:
    assert "no answer in time" in classify_unreachable(httpx.ReadTimeout("x")).detail
    assert "unreachable" in classify_unreachable(httpx.ConnectError("x")).detail


def test_every_listed_code_has_its_meaning_beside_it() -> None:
    for code in (*API_ERRORS, *REPORT_ERRORS):
        assert meaning(code)
    assert meaning(12345) is None
    assert "STOP" in (meaning(21610) or "")


def test_only_an_opt_out_suppresses() -> None:
    suppressing = [code for code, rule in {**API_ERRORS, **REPORT_ERRORS}.items() if rule.suppress]
    assert suppressing == [21610]


def test_provider_text_is_one_bounded_line_with_codes_masked() -> None:
    code = code_text.display(code_text.generate())
    detail = classify_answer(400, 21211, f"bad\r\nnumber {code} " + "x" * 500).detail
    assert "\n" not in detail and "\r" not in detail
    assert code not in detail and code[-4:] in detail
    assert len(detail) <= 300
    assert provider_text("  a\x00b\u2028c  ") == "a b c"
