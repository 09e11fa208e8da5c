"""Text gifts through the channel seam: intake, the dispatcher, the real client against
the local sink over HTTP, status callbacks through an HTTP endpoint, and ops.

Each test runs on SQLite and PostgreSQL (``Session``), with a real Redis for the shared
send rate and a real SMTP server for the purchaser's emails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import ops
from delivery.channels import registry
from delivery.channels.sms.endpoint import StatusEndpoint
from delivery.channels.sms.errors import InvalidSignature
from delivery.channels.sms.reports import UnknownMessage, apply_status_callback
from delivery.channels.sms.signature import compute_signature
from delivery.channels.sms.sink import Reply, Report, SmsSink
from delivery.channels.sms.transport import close_transport
from delivery.errors import OpsRefused
from delivery.models import Delivery, DeliveryAttempt, SuppressedAddress
from giftq.settings import reset_settings

PHONE = "+447911123456"
FROM_NUMBER = "+15005550006"  # Twilio's magic "valid sender" test number


@pytest.fixture
def endpoint(Session: sessionmaker[Session]) -> Iterator[StatusEndpoint]:
    with StatusEndpoint(Session) as made:
        yield made


@pytest.fixture
def texting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    endpoint: StatusEndpoint,
    smtp: Any,
    sink: SmsSink,
) -> Iterator[SmsSink]:
    """The sink standing in for Twilio, and settings that send texts through it."""
    for name, value in {
        "GIFTQ_SMS_BACKEND": "sink",
        "GIFTQ_SMS_API_BASE_URL": sink.base_url,
        "GIFTQ_SMS_ACCOUNT_SID": sink.account_sid,
        "GIFTQ_SMS_AUTH_TOKEN": sink.auth_token,
        "GIFTQ_SMS_FROM_NUMBER": FROM_NUMBER,
        "GIFTQ_SMS_STATUS_CALLBACK_URL": endpoint.url,
        "GIFTQ_SMS_RATE_REDIS_URL": redis_url,
        "GIFTQ_SMS_RATE_PER_SECOND": "500",
        "GIFTQ_SMS_BURST": "100",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    registry.close_all()
    close_transport()
    yield sink
    registry.close_all()
    close_transport()


def text_order(issued_order: Any, lines: int = 1, phone: str = PHONE) -> int:
    order_id: int = issued_order(lines, channel="sms", recipient={"name": "Sam", "phone": phone})
    return order_id


def gift(Session: sessionmaker[Session]) -> Delivery:
    with Session() as s:
        return s.scalars(select(Delivery).where(Delivery.kind == "gift").order_by(Delivery.id)).all()[-1]


def attempts(Session: sessionmaker[Session], delivery_id: int) -> list[tuple[str, int | None]]:
    with Session() as s:
        rows = s.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return [(a.outcome, a.code) for a in rows]


def wait_for(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def test_a_text_gift_is_sent_reported_delivered_and_the_purchaser_told(
    Session: sessionmaker[Session],
    issued_order: Any,
    texting: SmsSink,
    endpoint: StatusEndpoint,
    run_queued: Any,
    smtp: Any,
    conftest: Any,
) -> None:
    texting.report = Report(("queued", "sent", "delivered"))
    text_order(issued_order)
    run_queued(Session)
    (message,) = texting.messages
    assert message["to"] == PHONE
    (code,) = conftest.CODE_PATTERN.findall(message["body"])
    sent = gift(Session)
    assert sent.provider_ref == message["sid"]
    # "Delivered" waits for the handset's report, then the purchaser hears of it.
    wait_for(lambda: gift(Session).status == "delivered", "the delivered report")
    run_queued(Session)
    notices = [m for m in smtp.to("pat@example.com") if "Sam" in conftest.text_of(m)]
    assert len(notices) == 2  # the receipt and the delivered notice
    assert code not in "".join(conftest.text_of(m) for m in smtp.to("pat@example.com"))
    # The report may overtake the worker's own record of the answer: then both are logged.
    logged = attempts(Session, sent.id)
    assert ("accepted", 201) in logged
    assert {outcome for outcome, _ in logged} == {"accepted"}


def test_429_is_deferred_then_sent(
    Session: sessionmaker[Session], issued_order: Any, texting: SmsSink, run_queued: Any
) -> None:
    texting.script.append(Reply.error(20429))
    text_order(issued_order)
    run_queued(Session)
    sent = gift(Session)
    assert sent.status == "sent"
    assert len(texting.messages) == 1
    # The busy answer is pacing, not a failed attempt: one attempt, accepted.
    assert attempts(Session, sent.id) == [("accepted", 201)]
    assert [e.http_status for e in texting.exchanges] == [429, 201]


def test_stop_suppresses_the_number_until_ops_clear_it(
    Session: sessionmaker[Session],
    issued_order: Any,
    texting: SmsSink,
    run_queued: Any,
    smtp: Any,
    conftest: Any,
) -> None:
    texting.numbers[PHONE] = Reply.error(21610)
    text_order(issued_order)
    run_queued(Session)
    failed = gift(Session)
    assert failed.status == "failed_permanent"
    assert attempts(Session, failed.id) == [("permanent", 21610)]
    with Session() as s:
        assert s.get(SuppressedAddress, PHONE) is not None
    failure_notices = [m for m in smtp.to("pat@example.com") if "+447911123456" in conftest.text_of(m)]
    assert len(failure_notices) == 1
    # A later gift to the number is not attempted.
    text_order(issued_order)
    run_queued(Session)
    assert len(texting.exchanges) == 1
    assert attempts(Session, gift(Session).id) == [("suppressed", None)]
    with Session.begin() as s:
        assert ops.unsuppress(s, PHONE)


def test_an_invalid_number_fails_for_good(
    Session: sessionmaker[Session], issued_order: Any, texting: SmsSink, run_queued: Any
) -> None:
    texting.numbers[PHONE] = Reply.error(21211)
    text_order(issued_order)
    run_queued(Session)
    failed = gift(Session)
    assert (failed.status, attempts(Session, failed.id)) == ("failed_permanent", [("permanent", 21211)])
    with Session() as s:
        assert s.get(SuppressedAddress, PHONE) is None


def test_a_callback_storm_out_of_order_ends_delivered_once(
    Session: sessionmaker[Session],
    issued_order: Any,
    texting: SmsSink,
    endpoint: StatusEndpoint,
    run_queued: Any,
    smtp: Any,
) -> None:
    texting.report = Report(("queued", "sent", "delivered"), shuffle=True, repeat=4)
    text_order(issued_order, lines=3)
    run_queued(Session)
    wait_for(lambda: len(endpoint.answers) >= 3 * 3 * 4, "every callback")
    with Session() as s:
        gifts = s.scalars(select(Delivery).where(Delivery.kind == "gift")).all()
        notices = s.scalars(select(Delivery).where(Delivery.kind == "delivered_notice")).all()
    assert {g.status for g in gifts} == {"delivered"}
    assert sorted(n.parent_id or 0 for n in notices) == sorted(g.id for g in gifts)
    assert set(endpoint.answers) == {204}


def test_undelivered_30003_is_retried_and_30006_is_final(
    Session: sessionmaker[Session],
    issued_order: Any,
    texting: SmsSink,
    endpoint: StatusEndpoint,
    run_queued: Any,
) -> None:
    texting.numbers[PHONE] = Reply(report=Report.undelivered(30003))
    text_order(issued_order)
    run_queued(Session)
    wait_for(lambda: gift(Session).status == "failed_retryable", "the undelivered report")
    other = "+447911123457"
    texting.numbers[other] = Reply(report=Report.undelivered(30006))
    text_order(issued_order, phone=other)
    run_queued(Session)
    wait_for(lambda: gift(Session).status == "failed_permanent", "the landline report")


def test_a_bad_signature_or_an_unknown_message_changes_nothing(
    Session: sessionmaker[Session],
    issued_order: Any,
    texting: SmsSink,
    endpoint: StatusEndpoint,
    run_queued: Any,
) -> None:
    text_order(issued_order)
    run_queued(Session)
    sent = gift(Session)
    url = f"{endpoint.url}?ref={sent.id}"
    account, token = texting.account_sid, texting.auth_token
    params = [
        ("MessageSid", sent.provider_ref or ""),
        ("MessageStatus", "delivered"),
        ("AccountSid", account),
    ]
    with pytest.raises(InvalidSignature), Session.begin() as s:
        apply_status_callback(s, url, params, compute_signature(url, params, "not-the-token"))
    stranger = [("MessageSid", "SM" + "f" * 32), ("MessageStatus", "delivered"), ("AccountSid", account)]
    with pytest.raises(UnknownMessage), Session.begin() as s:
        apply_status_callback(s, url, stranger, compute_signature(url, stranger, token))
    assert gift(Session).status == "sent"
    with Session.begin() as s:
        applied = apply_status_callback(s, url, params, compute_signature(url, params, token))
    assert (applied.status, applied.changed) == ("delivered", True)
    with Session.begin() as s:  # the same report again: nothing new
        assert not apply_status_callback(s, url, params, compute_signature(url, params, token)).changed


def test_ops_replay_and_resend_a_text_gift_to_a_corrected_number(
    Session: sessionmaker[Session], issued_order: Any, texting: SmsSink, run_queued: Any
) -> None:
    texting.numbers[PHONE] = Reply.error(21211)
    text_order(issued_order)
    run_queued(Session)
    failed = gift(Session)
    with Session() as s:
        (listed,) = ops.list_failures(s)
        assert (listed.id, listed.channel) == (failed.id, "sms")
        card = ops.lookup_card(s, failed.card_id or 0)
    assert [a.code for a in card.deliveries[0].log] == [21211]
    with pytest.raises(OpsRefused, match=r"phone: .*not a mobile"), Session.begin() as s:
        ops.resend(s, failed.id, phone="+442079460000")
    with Session.begin() as s:
        resent = ops.resend(s, failed.id, phone="+447911123999")
    run_queued(Session)
    assert [m["to"] for m in texting.messages] == ["+447911123999"]
    with Session() as s:
        assert s.get_one(Delivery, resent.id).status == "sent"


def test_without_a_back_end_text_gifts_wait_where_ops_see_them(
    Session: sessionmaker[Session], issued_order: Any, run_queued: Any, smtp: Any
) -> None:
    text_order(issued_order)
    run_queued(Session)
    waiting = gift(Session)
    assert waiting.status == "scheduled"
    with Session() as s:
        (listed,) = ops.list_failures(s)
    assert listed.id == waiting.id
    assert "no back end is configured for sms (GIFTQ_SMS_BACKEND=none)" in (listed.last_error or "")
