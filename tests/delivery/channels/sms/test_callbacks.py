"""Status callbacks: verified first, then read into a typed report or refused by field."""

from __future__ import annotations

import pytest

from delivery.channels.sms import (
    InvalidSignature,
    MalformedCallback,
    MessageStatus,
    StatusReport,
    compute_signature,
    parse_status_callback,
    status_callback_url,
)
from delivery.channels.sms.signature import Params
from delivery.reasons import FailureReason
from delivery.retry import FailureKind

from .conftest import ACCOUNT_SID, AUTH_TOKEN

URL = "https://gifts.example.com/sms/status?ref=42"
SID = "SM" + "ab12" * 8


def form(**fields: str) -> dict[str, str]:
    base = {"AccountSid": ACCOUNT_SID, "MessageSid": SID, "SmsSid": SID, "MessageStatus": "delivered"}
    base.update(fields)
    return {name: value for name, value in base.items() if value != "-"}


def parse(params: Params, url: str = URL, token: str = AUTH_TOKEN) -> StatusReport:
    signature = compute_signature(url, params, token)
    return parse_status_callback(url, params, signature, AUTH_TOKEN, account_sid=ACCOUNT_SID)


def test_a_delivered_report() -> None:
    report = parse(form())
    assert (report.message_sid, report.status, report.error_code, report.delivery_ref) == (
        SID,
        MessageStatus.DELIVERED,
        None,
        42,
    )
    assert report.final and report.delivered and report.failure is None


def test_an_undelivered_report_carries_its_failure() -> None:
    report = parse(form(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30003"))
    failure = report.failure
    assert failure is not None
    assert (failure.kind, failure.code, failure.reason) == (
        FailureKind.RETRYABLE,
        30003,
        FailureReason.UNREACHABLE,
    )
    opted_out = parse(form(MessageStatus="failed", ErrorCode="21610")).failure
    assert opted_out.suppress and opted_out.reason is FailureReason.OPTED_OUT


@pytest.mark.parametrize(
    ("status", "progress", "final"),
    [
        ("queued", 0, False),
        ("sending", 1, False),
        ("sent", 2, False),
        ("delivered", 3, True),
        ("failed", 3, True),
    ],
)
def test_progress_orders_reports_that_arrive_out_of_order(status: str, progress: int, final: bool) -> None:
    report = parse(form(MessageStatus=status))
    assert (report.progress, report.final) == (progress, final)


def test_the_older_sms_fields_are_read_when_the_new_ones_are_missing() -> None:
    report = parse(form(MessageSid="-", MessageStatus="-", SmsStatus="sent"))
    assert (report.message_sid, report.status) == (SID, MessageStatus.SENT)


def test_the_signature_is_checked_before_anything_else() -> None:
    garbage = {"MessageStatus": "exploded"}
    with pytest.raises(InvalidSignature):
        parse_status_callback(URL, garbage, "bm90IGEgc2lnbmF0dXJl", AUTH_TOKEN)
    with pytest.raises(InvalidSignature):
        parse(form(), token="another-token")
    with pytest.raises(InvalidSignature):
        parse_status_callback(URL, form(), None, AUTH_TOKEN)
    signed_for_another_delivery = compute_signature(URL.replace("42", "43"), form(), AUTH_TOKEN)
    with pytest.raises(InvalidSignature):
        parse_status_callback(URL, form(), signed_for_another_delivery, AUTH_TOKEN)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        (form(MessageSid="-", SmsSid="-"), "MessageSid: missing"),
        (form(MessageSid="SM123", SmsSid="-"), "MessageSid: not a message SID"),
        (form(MessageStatus="-", SmsStatus="-"), "MessageStatus: missing"),
        (form(MessageStatus="exploded"), "MessageStatus: unknown status 'exploded'"),
        (form(ErrorCode="30003; drop table"), "ErrorCode: not a number"),
        (form(AccountSid="AC" + "f" * 32), "AccountSid: not our account"),
        (form(AccountSid="nope"), "AccountSid: not an account SID"),
        ([*form().items(), ("MessageStatus", "sent")], "MessageStatus: given 2 different values"),
    ],
)
def test_malformed_reports_name_the_field(params: Params, says: str) -> None:
    with pytest.raises(MalformedCallback, match=says):
        parse(params)


def test_a_bad_ref_in_the_url_is_malformed() -> None:
    with pytest.raises(MalformedCallback, match="ref"):
        parse(form(), url="https://gifts.example.com/sms/status?ref=abc")
    assert parse(form(), url="https://gifts.example.com/sms/status").delivery_ref is None


def test_the_same_value_twice_is_not_a_conflict() -> None:
    report = parse([*form().items(), ("MessageStatus", "delivered")])
    assert report.status is MessageStatus.DELIVERED


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://gifts.example.com/sms/status", "https://gifts.example.com/sms/status?ref=7"),
        ("https://gifts.example.com/sms/status?a=1", "https://gifts.example.com/sms/status?a=1&ref=7"),
        ("https://gifts.example.com/sms/status?ref=1&a=1", "https://gifts.example.com/sms/status?a=1&ref=7"),
    ],
)
def test_status_callback_url(base: str, url: str) -> None:
    assert status_callback_url(base, 7) == url


@pytest.mark.parametrize(
    ("base", "ref"), [("/sms/status", 1), ("ftp://x.example/s", 1), ("https://x/s", "1")]
)
def test_status_callback_url_refuses_bad_input(base: str, ref: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        status_callback_url(base, ref)  # type: ignore[arg-type]
