"""The transport against the sink over HTTP: paced batches, one outcome per text."""

from __future__ import annotations

import json
import logging
import multiprocessing
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from delivery.channels.sms import (
    SmsConfigError,
    SmsTransport,
    TextEnvelope,
    TextOutcome,
    TwilioClient,
    get_transport,
)
from delivery.channels.sms.ratelimit import LocalRateLimiter, RedisRateLimiter, Reservation
from delivery.channels.sms.sink import Reply, SmsSink
from delivery.channels.sms.transport import close_transport
from delivery.reasons import FailureReason as Why
from delivery.retry import FailureKind
from giftq.settings import reset_settings
from ledger.codes import text as code_text

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from .test_ratelimit import assert_gcra

R, P = FailureKind.RETRYABLE, FailureKind.PERMANENT
CALLBACKS = "http://127.0.0.1:9/sms/status"  # the sink posts no reports in these tests


def body(ref: int) -> str:
    return f"Eve sent you a gift. Code: {code_text.display(code_text.generate())} #{ref}"


def envelopes(*numbers: str, start: int = 1) -> list[TextEnvelope]:
    return [TextEnvelope(start + i, number, body(start + i)) for i, number in enumerate(numbers)]


def fast_limiter() -> LocalRateLimiter:
    return LocalRateLimiter(FROM_NUMBER, rate_per_second=1000, burst=1000)


@pytest.fixture
def transport(client: TwilioClient) -> SmsTransport:
    return SmsTransport(client, fast_limiter(), status_callback_base=CALLBACKS)


def test_an_accepted_text_has_its_sid(transport: SmsTransport, sink: SmsSink) -> None:
    [outcome] = transport.send_batch(envelopes("+14155550123", start=41))
    assert outcome.accepted and outcome.status == "accepted" and outcome.failure is None
    assert outcome.ref == 41 and outcome.http_status == 201
    [message] = sink.messages
    assert message["sid"] == outcome.message_sid
    assert sink.directory is not None
    callback = json.loads((sink.directory / f"{message['sid']}.json").read_text())["status_callback"]
    assert parse_qs(urlsplit(callback).query)["ref"] == ["41"]


def test_429_then_success(transport: SmsTransport, sink: SmsSink) -> None:
    sink.script.append(Reply.error(20429))
    [first] = transport.send_batch(envelopes("+14155550123"))
    assert first.status == "failed" and first.failure is not None
    assert (first.failure.kind, first.failure.code, first.http_status) == (R, 20429, 429)
    [second] = transport.send_batch(envelopes("+14155550123"))
    assert second.accepted


def test_a_429_defers_the_rest_of_the_batch(transport: SmsTransport, sink: SmsSink) -> None:
    sink.script.append(Reply.error(20429))
    outcomes = transport.send_batch(envelopes("+14155550123", "+14155550124", "+14155550125"))
    assert [o.status for o in outcomes] == ["failed", "deferred", "deferred"]
    assert all(o.retry_after == 1.0 for o in outcomes[1:])
    assert len(sink.exchanges) == 1  # the deferred were not tried


def test_opted_out_is_permanent_and_suppresses(transport: SmsTransport, sink: SmsSink) -> None:
    sink.script.append(Reply.error(21610))
    [outcome] = transport.send_batch(envelopes("+14155550123"))
    failure = outcome.failure
    assert failure is not None
    assert (failure.kind, failure.code, failure.suppress, failure.reason) == (P, 21610, True, Why.OPTED_OUT)
    assert "unsubscribed" in failure.detail


def test_an_invalid_number_is_permanent(transport: SmsTransport) -> None:
    [outcome] = transport.send_batch(envelopes("+15005550001"))  # Twilio's magic invalid number
    failure = outcome.failure
    assert failure is not None
    assert (failure.kind, failure.code, failure.suppress, failure.reason) == (
        P,
        21211,
        False,
        Why.UNDELIVERABLE,
    )


def test_one_refusal_does_not_stop_the_batch(transport: SmsTransport, sink: SmsSink) -> None:
    outcomes = transport.send_batch(envelopes("+14155550123", "+15005550009", "+14155550124"))
    assert [o.status for o in outcomes] == ["accepted", "failed", "accepted"]
    assert outcomes[1].failure is not None and outcomes[1].failure.code == 21614
    assert len(sink.messages) == 2


def test_a_server_error_is_retryable(transport: SmsTransport, sink: SmsSink) -> None:
    sink.script.append(Reply(error_code=None, http_status=500))
    [outcome] = transport.send_batch(envelopes("+14155550123"))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.code, outcome.failure.reason) == (R, 500, Why.UNREACHABLE)


def test_a_timeout_is_retryable_and_spares_the_rest_of_the_batch(sink: SmsSink) -> None:
    client = TwilioClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=sink.base_url, from_number=FROM_NUMBER, timeout=0.3
    )
    transport = SmsTransport(client, fast_limiter(), status_callback_base=CALLBACKS)
    sink.script.append(Reply(delay=2))
    try:
        outcomes = transport.send_batch(envelopes("+14155550123", "+14155550124"))
    finally:
        transport.close()
    assert [(o.status, o.http_status) for o in outcomes] == [("failed", None), ("failed", None)]
    for outcome in outcomes:
        assert outcome.failure is not None
        assert (outcome.failure.kind, outcome.failure.code) == (R, None)
        assert "no answer in time" in outcome.failure.detail
    assert [e.to for e in sink.exchanges] in ([], ["+14155550123"])  # only the first was tried


def test_no_provider_at_all_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = TwilioClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=f"http://127.0.0.1:{port}", from_number=FROM_NUMBER
    )
    transport = SmsTransport(client, fast_limiter(), status_callback_base=CALLBACKS)
    outcomes = transport.send_batch(envelopes("+14155550123", "+14155550124"))
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all(o.failure is not None and o.failure.retryable and o.failure.code is None for o in outcomes)


def test_pacing_defers_what_does_not_fit_in_the_wait_budget(client: TwilioClient, sink: SmsSink) -> None:
    limiter = LocalRateLimiter(FROM_NUMBER, rate_per_second=1, burst=2)
    transport = SmsTransport(client, limiter, status_callback_base=CALLBACKS, pace_max_wait=0)
    outcomes = transport.send_batch(envelopes("+14155550123", "+14155550124", "+14155550125", "+14155550126"))
    assert [o.status for o in outcomes] == ["accepted", "accepted", "deferred", "deferred"]
    assert all(o.retry_after is not None and 0 < o.retry_after <= 1 for o in outcomes[2:])
    assert len(sink.exchanges) == 2


def test_without_the_shared_rate_texts_wait_rather_than_go_unpaced(
    client: TwilioClient, sink: SmsSink
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nowhere = redis.Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    transport = SmsTransport(
        client, RedisRateLimiter(nowhere, FROM_NUMBER, 1, 1), status_callback_base=CALLBACKS
    )
    outcomes = transport.send_batch(envelopes("+14155550123", "+14155550124"))
    assert [(o.status, o.retry_after) for o in outcomes] == [("deferred", 5.0), ("deferred", 5.0)]
    assert sink.exchanges == []
    assert transport.send_batch([]) == []


class RecordingLimiter:
    """The real limiter, with each granted slot written down and Redis's clock at the send."""

    def __init__(self, inner: RedisRateLimiter, client: redis.Redis) -> None:
        self.inner = inner
        self.sender = inner.sender
        self.client = client
        self.slots: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def reserve(self, max_wait: float) -> Reservation:
        return self.inner.reserve(max_wait)

    def acquire(self, max_wait: float) -> Reservation:
        reservation = self.inner.acquire(max_wait)
        if reservation.granted:
            seconds, micros = self.client.time()
            with self._lock:
                self.slots.append((reservation.slot_us, int(seconds) * 1_000_000 + int(micros)))
        return reservation


@pytest.mark.redis
def test_a_burst_of_texts_from_many_threads_is_paced_and_none_is_lost(
    client: TwilioClient, sink: SmsSink, redis_url: str
) -> None:
    """Four workers send 100 texts at once through one sender at 50/s (burst 5), each
    with a 0.2 s wait budget per batch: they go out paced, and what a batch could not
    fit is deferred and sent by the next, never refused."""
    redis_client = redis.Redis.from_url(redis_url)
    limiter = RecordingLimiter(RedisRateLimiter(redis_client, FROM_NUMBER, 50, 5), redis_client)
    transport = SmsTransport(client, limiter, status_callback_base=CALLBACKS, pace_max_wait=0.2)
    outcomes: list[TextOutcome] = []
    batches = 0
    lock = threading.Lock()

    def worker(pending: list[TextEnvelope]) -> None:
        nonlocal batches
        while pending:
            done = transport.send_batch(pending)
            with lock:
                batches += 1
                outcomes.extend(o for o in done if not o.deferred)
            deferred = {o.ref for o in done if o.deferred}
            pending = [e for e in pending if e.ref in deferred]

    numbers = [f"+1415555{i:04d}" for i in range(100)]
    work = envelopes(*numbers)
    threads = [threading.Thread(target=worker, args=(work[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(o.ref for o in outcomes) == list(range(1, 101))  # each exactly once
    assert all(o.accepted for o in outcomes)
    assert sorted(m["to"] for m in sink.messages) == sorted(numbers)
    assert batches > 4  # some texts were deferred and sent by a later batch
    assert_gcra([slot for slot, _ in limiter.slots], interval_us=20_000, burst=5)
    assert all(sent >= slot for slot, sent in limiter.slots)


def _send_in_process(base_url: str, redis_url: str, start: int, out: Any) -> None:
    client = TwilioClient(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, from_number=FROM_NUMBER)
    redis_client = redis.Redis.from_url(redis_url)
    limiter = RecordingLimiter(RedisRateLimiter(redis_client, FROM_NUMBER, 100, 5), redis_client)
    transport = SmsTransport(client, limiter, status_callback_base=CALLBACKS, pace_max_wait=30)
    done = transport.send_batch(envelopes(*[f"+1415556{start + i:04d}" for i in range(20)], start=start))
    out.put(([(o.ref, o.status) for o in done], limiter.slots))


@pytest.mark.redis
def test_worker_processes_share_the_senders_rate(sink: SmsSink, redis_url: str) -> None:
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    processes = [
        context.Process(target=_send_in_process, args=(sink.base_url, redis_url, 100 * k, out))
        for k in range(3)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    statuses = [status for done, _ in results for _, status in done]
    slots = [pair for _, taken in results for pair in taken]
    assert statuses == ["accepted"] * 60 and len(sink.messages) == 60
    assert_gcra([slot for slot, _ in slots], interval_us=10_000, burst=5)
    assert all(sent >= slot for slot, sent in slots)


def test_bodies_never_reach_the_logs(transport: SmsTransport, sink: SmsSink, caplog: Any) -> None:
    sink.script.extend([Reply.error(21610), Reply.error(20500, message="echo: " + "x")])
    batch = envelopes("+14155550123", "+14155550124", "+14155550125")
    with caplog.at_level(logging.DEBUG):
        transport.send_batch(batch)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "21610" in logged  # failures are logged, by ref and code
    for envelope in batch:
        code = envelope.body.split("Code: ")[1].split(" ")[0]
        assert code not in logged and code_text.normalize(code) not in logged
        assert code not in repr(envelope)


@pytest.mark.parametrize(
    ("ref", "to", "text", "error"),
    [
        ("1", "+14155550123", "x", TypeError),
        (1, "4155550123", "x", ValueError),
        (1, "+1 415 555 0123", "x", ValueError),
        (1, "+14155550123", "  ", ValueError),
    ],
)
def test_envelopes_are_checked(ref: Any, to: str, text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        TextEnvelope(ref, to, text)


def test_the_limiter_must_pace_the_clients_sender(client: TwilioClient) -> None:
    with pytest.raises(SmsConfigError, match="sender"):
        SmsTransport(client, LocalRateLimiter("+19999999999", 1, 1), status_callback_base=CALLBACKS)
    with pytest.raises(ValueError, match="absolute"):
        SmsTransport(client, fast_limiter(), status_callback_base="/sms/status")


@pytest.fixture
def process_transport() -> Iterator[None]:
    close_transport()
    yield
    close_transport()


def test_the_process_transport_comes_from_settings(
    monkeypatch: pytest.MonkeyPatch, process_transport: None
) -> None:
    with pytest.raises(SmsConfigError, match="off"):
        get_transport()
    monkeypatch.setenv("GIFTQ_SMS_BACKEND", "sink")
    reset_settings()
    transport = get_transport()
    assert transport is get_transport()
    assert transport.status_callback_base == "https://gifts.example.com/sms/status"
    assert isinstance(transport.limiter, LocalRateLimiter)  # the in-memory broker has no Redis
