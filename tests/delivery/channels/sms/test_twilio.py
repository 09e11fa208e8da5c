"""The Messages API client, over real HTTP against the sink, and its answer parser."""

from __future__ import annotations

import multiprocessing
import re
import socket
from typing import Any

import pytest

from delivery.channels.sms import MessageAnswer, ProviderUnreachable, SmsConfigError, TwilioClient
from delivery.channels.sms.sink import Reply, SmsSink
from delivery.channels.sms.twilio import (
    SINK_ACCOUNT_SID,
    SINK_API_BASE_URL,
    TWILIO_API_BASE_URL,
    get_client,
    parse_answer,
)
from giftq.settings import Settings, SettingsError, reset_settings

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

CALLBACK = "http://127.0.0.1:9/sms/status?ref=1"  # never called: the sink posts no reports here
SERVICE_SID = "MG" + "0123456789abcdef" * 2


def test_a_text_is_created(client: TwilioClient, sink: SmsSink, contract: dict[str, Any]) -> None:
    answer = client.send("+14155550123", "Hello Zoë", status_callback=CALLBACK)
    assert answer.accepted
    assert (answer.http_status, answer.status, answer.error_code, answer.error_message) == (
        201,
        "queued",
        None,
        "",
    )
    assert answer.message_sid is not None and re.fullmatch(r"SM[0-9a-f]{32}", answer.message_sid)
    [kept] = sink.messages
    assert (kept["to"], kept["from"], kept["body"], kept["sid"]) == (
        "+14155550123",
        FROM_NUMBER,
        "Hello Zoë",
        answer.message_sid,
    )
    [exchange] = sink.exchanges
    request = contract["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(exchange.fields) <= set(request["properties"])
    assert set(request["required"]) <= set(exchange.fields)
    assert {"To", "Body", "From", "StatusCallback"} == set(exchange.fields)


def test_a_messaging_service_sends_without_a_from_number(sink: SmsSink, contract: dict[str, Any]) -> None:
    pattern = contract["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"][
        "MessagingServiceSid"
    ]["pattern"]
    assert re.fullmatch(pattern, SERVICE_SID)
    client = TwilioClient(ACCOUNT_SID, AUTH_TOKEN, base_url=sink.base_url, messaging_service_sid=SERVICE_SID)
    try:
        answer = client.send("+14155550123", "Hi", status_callback=CALLBACK)
    finally:
        client.close()
    assert answer.accepted and answer.status == "accepted"
    assert set(sink.exchanges[0].fields) == {"To", "Body", "MessagingServiceSid", "StatusCallback"}
    assert client.sender == SERVICE_SID


def test_refusals_are_answers_not_exceptions(client: TwilioClient, sink: SmsSink) -> None:
    sink.script.extend([Reply.error(21610), Reply.error(20429), Reply.error(20500)])
    answers = [client.send("+14155550123", "Hi", status_callback=CALLBACK) for _ in range(3)]
    assert [(a.http_status, a.error_code, a.accepted) for a in answers] == [
        (400, 21610, False),
        (429, 20429, False),
        (500, 20500, False),
    ]
    assert answers[0].error_message == "Attempt to send to unsubscribed recipient"
    assert answers[0].message_sid is None


def test_wrong_credentials_are_an_answer(sink: SmsSink) -> None:
    client = TwilioClient(ACCOUNT_SID, "wrong-token", base_url=sink.base_url, from_number=FROM_NUMBER)
    try:
        answer = client.send("+14155550123", "Hi", status_callback=CALLBACK)
    finally:
        client.close()
    assert (answer.http_status, answer.error_code, answer.accepted) == (401, 20003, False)
    assert sink.messages == []


def test_one_kept_alive_connection_for_many_texts(client: TwilioClient, sink: SmsSink) -> None:
    for _ in range(4):
        assert client.send("+14155550123", "Hi", status_callback=CALLBACK).accepted
    assert client.pools_opened == 1
    assert len({exchange.peer for exchange in sink.exchanges}) == 1


def _send_in_child(client: TwilioClient, results: Any) -> None:
    answer = client.send("+14155550124", "from the child", status_callback=CALLBACK)
    results.put((answer.accepted, client.pools_opened))


def test_a_forked_child_opens_its_own_pool(client: TwilioClient, sink: SmsSink) -> None:
    assert client.send("+14155550123", "before the fork", status_callback=CALLBACK).accepted
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_send_in_child, args=(client, results))
    child.start()
    accepted, child_pools = results.get(timeout=30)
    child.join(timeout=30)
    assert (accepted, child_pools, child.exitcode) == (True, 1, 0)
    # The parent's connection was neither used nor closed by the child: it carries on.
    assert client.send("+14155550123", "after the fork", status_callback=CALLBACK).accepted
    parent, child_peer, parent_again = (e.peer for e in sink.exchanges)
    assert parent == parent_again != child_peer
    assert client.pools_opened == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_no_server_raises_provider_unreachable() -> None:
    client = TwilioClient(
        ACCOUNT_SID,
        AUTH_TOKEN,
        base_url=f"http://127.0.0.1:{_free_port()}",
        from_number=FROM_NUMBER,
        timeout=2,
    )
    with pytest.raises(ProviderUnreachable) as raised:
        client.send("+14155550123", "Hi", status_callback=CALLBACK)
    assert raised.value.timeout is False
    assert "ConnectError" in str(raised.value) and "Hi" not in str(raised.value)


def test_a_slow_answer_is_a_timeout(sink: SmsSink) -> None:
    sink.script.append(Reply(delay=3))
    client = TwilioClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=sink.base_url, from_number=FROM_NUMBER, timeout=0.3
    )
    try:
        with pytest.raises(ProviderUnreachable) as raised:
            client.send("+14155550123", "Hi", status_callback=CALLBACK)
    finally:
        client.close()
    assert raised.value.timeout is True


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (
            400,
            {},
            b'{"code": 21211, "message": "The \'To\' number 12 is not a valid phone number.", '
            b'"more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}',
            MessageAnswer(400, None, None, 21211, "The 'To' number 12 is not a valid phone number."),
        ),
        (  # the newer RFC 9457 shape
            429,
            {"Retry-After": "3"},
            b'{"type": "https://www.twilio.com/docs/errors/20429", "title": "Too Many Requests", '
            b'"status": 429, "code": 20429, "detail": "Slow down"}',
            MessageAnswer(429, None, None, 20429, "Slow down", 3.0),
        ),
        (502, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>", None),
        (201, {}, b'{"sid": "not-a-sid", "status": "queued"}', MessageAnswer(201, None, "queued", None, "")),
        (
            503,
            {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
            b"",
            MessageAnswer(503, None, None, None, ""),
        ),
    ],
)
def test_parse_answer(
    status: int, headers: dict[str, str], body: bytes, expected: MessageAnswer | None
) -> None:
    answer = parse_answer(status, headers, body)
    if expected is None:
        assert (answer.http_status, answer.error_code, answer.accepted) == (502, None, False)
        assert answer.error_message == "answer is not a JSON object (24 bytes)"
    else:
        assert answer == expected
        assert not answer.accepted


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"account_sid": "AC123"}, "account SID"),
        ({"auth_token": ""}, "auth token"),
        ({"from_number": ""}, "Messaging Service SID or a From number"),
        ({"from_number": "not a number!"}, "E.164"),
        ({"messaging_service_sid": "MGxyz"}, "Messaging Service SID"),
        ({"base_url": "ftp://api.example"}, "https://"),
    ],
)
def test_client_configuration_is_checked(kwargs: dict[str, Any], says: str) -> None:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM_NUMBER,
    }
    values.update(kwargs)
    with pytest.raises(SmsConfigError, match=says):
        TwilioClient(values.pop("account_sid"), values.pop("auth_token"), **values)


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SmsConfigError, match="GIFTQ_SMS_BACKEND=none"):
        TwilioClient.from_settings(Settings())
    monkeypatch.setenv("GIFTQ_SMS_BACKEND", "twilio")
    with pytest.raises(SmsConfigError, match="GIFTQ_SMS_ACCOUNT_SID and GIFTQ_SMS_AUTH_TOKEN"):
        TwilioClient.from_settings(Settings())
    monkeypatch.setenv("GIFTQ_SMS_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("GIFTQ_SMS_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("GIFTQ_SMS_FROM_NUMBER", FROM_NUMBER)
    monkeypatch.setenv("GIFTQ_SMS_MESSAGING_SERVICE_SID", SERVICE_SID)
    client = TwilioClient.from_settings(Settings())
    assert (client.base_url, client.sender, client.auth_token) == (
        TWILIO_API_BASE_URL,
        SERVICE_SID,
        AUTH_TOKEN,
    )
    assert AUTH_TOKEN not in repr(client)


def test_the_sink_backend_works_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_SMS_BACKEND", "sink")
    client = TwilioClient.from_settings(Settings())
    assert (client.account_sid, client.base_url, client.sender) == (
        SINK_ACCOUNT_SID,
        SINK_API_BASE_URL,
        "giftq",
    )


def test_settings_refuse_malformed_sids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_SMS_ACCOUNT_SID", "AC-not-hex")
    with pytest.raises(SettingsError, match="GIFTQ_SMS_ACCOUNT_SID"):
        Settings()


def test_get_client_is_one_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from delivery.channels.sms.twilio import close_client

    monkeypatch.setenv("GIFTQ_SMS_BACKEND", "sink")
    reset_settings()
    close_client()
    try:
        assert get_client() is get_client()
    finally:
        close_client()
