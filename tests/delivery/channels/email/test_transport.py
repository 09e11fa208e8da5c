"""SmtpTransport against real in-process SMTP servers (aiosmtpd): no SMTP mocks.

The server fixtures and handlers are in conftest.py; a server counts connections by the
client's address, so "one connection" is what the server saw, not what we claim.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from delivery.channels.email import (
    Envelope,
    InvalidAddress,
    SmtpSink,
    build_message,
    close_transport,
    get_transport,
    render_email,
)
from delivery.channels.email.transport import _inherited
from giftq.settings import reset_settings

FROM = "gifts@giftq.example"
BODY = b"Subject: test\r\n\r\nHello.\r\n"


def envelopes(count: int, start: int = 0, data: bytes = BODY) -> list[Envelope]:
    return [Envelope(FROM, f"r{i}@example.com", data, i) for i in range(start, start + count)]


def test_a_batch_goes_over_one_connection_and_the_next_batch_reuses_it(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any
) -> None:
    recorder = handlers.Recorder()
    transport = make_transport(make_smtp_server(recorder))
    first = transport.send_batch(envelopes(50))
    second = transport.send_batch(envelopes(50, start=50))
    assert [o.ref for o in first + second] == list(range(100))
    assert all(o.accepted and o.code == 250 and o.failure is None for o in first + second)
    assert len(recorder.received) == 100
    assert recorder.connections == 1
    assert transport.connections_opened == 1
    assert [r.rcpt_tos for r in recorder.received[:2]] == [("r0@example.com",), ("r1@example.com",)]


def test_message_bytes_arrive_unchanged(
    smtp_server: Any, make_transport: Any, samples: SimpleNamespace
) -> None:
    ctx = samples.gift("DE", message=".\n..dots at the start of lines\n.")
    data = build_message(render_email(ctx), to_name=ctx.to_name, to_addr=ctx.to_addr)
    [outcome] = make_transport(smtp_server).send_batch(
        [Envelope.for_message(data, rcpt_to=ctx.to_addr, ref=7)]
    )
    assert outcome.accepted
    [received] = smtp_server.handler.received
    assert received.data == data
    assert received.mail_from == "gifts@giftq.example"
    assert received.rcpt_tos == ("zoe@example.com",)


def test_reconnects_when_the_server_closed_an_idle_connection(smtp_server: Any, make_transport: Any) -> None:
    transport = make_transport(smtp_server)
    assert all(o.accepted for o in transport.send_batch(envelopes(3)))
    smtp_server.disconnect_all()
    outcomes = transport.send_batch(envelopes(3, start=3))
    assert all(o.accepted for o in outcomes)
    assert smtp_server.handler.connections == 2
    assert len(smtp_server.handler.received) == 6


def test_421_before_data_is_retried_on_a_new_connection(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any
) -> None:
    server = make_smtp_server(handlers.Refuse421(times=1))
    outcomes = make_transport(server).send_batch(envelopes(5))
    assert all(o.accepted for o in outcomes), outcomes
    assert [r.rcpt_tos[0] for r in server.handler.received] == [f"r{i}@example.com" for i in range(5)]
    assert server.handler.connections == 2


def test_421_twice_leaves_the_rest_of_the_batch_retryable_then_recovers(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any
) -> None:
    server = make_smtp_server(handlers.Refuse421(times=2))
    transport = make_transport(server)
    outcomes = transport.send_batch(envelopes(5))
    assert [o.accepted for o in outcomes] == [False] * 5
    assert outcomes[0].code == 421 and outcomes[0].failure and outcomes[0].failure.retryable
    assert "Service not available" in outcomes[0].response
    assert all(o.failure is not None and o.failure.kind == "retryable" for o in outcomes)
    assert server.handler.received == []
    # The caller retries later; by then the server is back.
    assert all(o.accepted for o in transport.send_batch(envelopes(5)))


@pytest.mark.parametrize("mode", ["drop", "421"])
def test_connection_lost_after_data_marks_that_message_retryable_and_continues(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any, mode: str
) -> None:
    server = make_smtp_server(handlers.DropAfterData("r2@example.com", mode))
    outcomes = make_transport(server).send_batch(envelopes(5))
    assert [o.accepted for o in outcomes] == [True, True, False, True, True]
    lost = outcomes[2]
    assert lost.ref == 2 and lost.failure is not None and lost.failure.retryable
    assert lost.code == (421 if mode == "421" else None)
    received = [r.rcpt_tos[0] for r in server.handler.received]
    if mode == "drop":
        # The server kept it although we never heard back: why it is not resent at once.
        assert received == [f"r{i}@example.com" for i in range(5)]
    else:
        assert received == ["r0@example.com", "r1@example.com", "r3@example.com", "r4@example.com"]
    assert server.handler.connections == 2


def test_each_recipient_gets_its_own_outcome(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any
) -> None:
    handler = handlers.Picky(
        {
            "r2@example.com": "550 5.1.1 <r2@example.com>: Recipient address rejected: User unknown",
            "r5@example.com": "553 5.1.3 Bad recipient address syntax",
            "r7@example.com": "452 4.2.2 Mailbox full, try again later",
        }
    )
    server = make_smtp_server(handler)
    outcomes = make_transport(server).send_batch(envelopes(10))
    by_ref = {o.ref: o for o in outcomes}
    assert [o.ref for o in outcomes] == list(range(10))
    assert {ref for ref, o in by_ref.items() if o.accepted} == {0, 1, 3, 4, 6, 8, 9}
    assert (by_ref[2].code, by_ref[2].failure and by_ref[2].failure.kind) == (550, "permanent")
    assert (by_ref[5].code, by_ref[5].failure and by_ref[5].failure.kind) == (553, "permanent")
    assert (by_ref[7].code, by_ref[7].failure and by_ref[7].failure.kind) == (452, "retryable")
    assert "User unknown" in by_ref[2].response
    assert len(handler.received) == 7
    assert handler.connections == 1


def test_unreachable_server_leaves_every_message_retryable(make_transport: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on that port now.
    server = SimpleNamespace(host="127.0.0.1", port=port)
    outcomes = make_transport(server).send_batch(envelopes(3))
    assert [o.ref for o in outcomes] == [0, 1, 2]
    for outcome in outcomes:
        assert not outcome.accepted
        assert outcome.failure is not None and outcome.failure.retryable
        assert outcome.code is None


def test_a_server_too_slow_to_answer_times_out_and_the_batch_goes_on(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any
) -> None:
    server = make_smtp_server(handlers.Slow("r1@example.com", delay=1.0))
    outcomes = make_transport(server, timeout=0.3).send_batch(envelopes(3))
    assert [o.accepted for o in outcomes] == [True, False, True]
    assert outcomes[1].failure is not None and outcomes[1].failure.retryable
    assert "timed out" in outcomes[1].failure.detail


class _GaveUp(Exception):
    """What a task's soft time limit raises in the waiting thread."""


def test_a_batch_its_caller_gave_up_on_stops_sending(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any
) -> None:
    recorder = handlers.Slow("r1@example.com", delay=1.0)
    transport = make_transport(make_smtp_server(recorder), timeout=5)

    def give_up(signum: int, frame: Any) -> None:
        raise _GaveUp

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # while the server sits on r1's DATA
    try:
        with pytest.raises(_GaveUp):
            transport.send_batch(envelopes(5))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    time.sleep(1.5)  # long enough for the rest of the batch, had it gone on
    # Nobody records the answers of a batch given up on: nothing after the message in
    # flight may go out, or the retry of those rows would send each one again.
    assert {r.rcpt_tos for r in recorder.received} <= {("r0@example.com",), ("r1@example.com",)}


def test_empty_batch_does_nothing(smtp_server: Any, make_transport: Any) -> None:
    transport = make_transport(smtp_server)
    assert transport.send_batch([]) == []
    assert transport.connections_opened == 0


def test_batches_from_several_threads_share_the_connection(smtp_server: Any, make_transport: Any) -> None:
    transport = make_transport(smtp_server)
    results: list[list[Any]] = []

    def send(start: int) -> None:
        results.append(transport.send_batch(envelopes(20, start=start)))

    threads = [threading.Thread(target=send, args=(i * 20,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(o.accepted for batch in results for o in batch) == 80
    assert smtp_server.handler.connections == 1


def test_close_says_quit_and_a_later_batch_reconnects(smtp_server: Any, make_transport: Any) -> None:
    transport = make_transport(smtp_server)
    transport.send_batch(envelopes(1))
    transport.close()
    transport.close()  # idempotent
    assert all(o.accepted for o in transport.send_batch(envelopes(1, start=1)))
    assert transport.connections_opened == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_never_uses_the_parents_connection(smtp_server: Any, make_transport: Any) -> None:
    transport = make_transport(smtp_server)
    assert transport.send_batch(envelopes(1))[0].accepted
    inherited_before = len(_inherited)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        status = 1
        try:
            ok = len(_inherited) == inherited_before + 1
            outcome = transport.send_batch(envelopes(1, start=1))[0]
            ok = ok and outcome.accepted and transport.connections_opened == 2
            transport.close()
            status = 0 if ok else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection survived the child (no QUIT, no close from there).
    assert transport.send_batch(envelopes(1, start=2))[0].accepted
    assert transport.connections_opened == 1
    assert smtp_server.handler.connections == 2
    assert len(smtp_server.handler.received) == 3


def test_starttls_with_login(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any, tls_files: Any
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret", handled=False)

    server = make_smtp_server(
        handlers.Recorder(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    client_tls = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    good = make_transport(
        server, security="starttls", username="giftq", password="s3cret", tls_context=client_tls
    )
    assert all(o.accepted for o in good.send_batch(envelopes(3)))
    assert logins == [("giftq", "s3cret")]

    # A wrong password is our configuration, not the recipients' fault: retryable.
    bad = make_transport(
        server, security="starttls", username="giftq", password="wrong", tls_context=client_tls
    )
    outcomes = bad.send_batch(envelopes(2))
    assert all(not o.accepted and o.failure and o.failure.retryable for o in outcomes)
    assert outcomes[0].code == 535


def test_implicit_tls_verifies_the_server_certificate(
    handlers: SimpleNamespace, make_smtp_server: Any, make_transport: Any, tls_files: Any
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    server = make_smtp_server(handlers.Recorder(), ssl_context=server_tls)
    trusted = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    assert make_transport(server, security="tls", tls_context=trusted).send_batch(envelopes(1))[0].accepted
    # Without our CA the certificate is not trusted, and nothing is sent.
    [outcome] = make_transport(server, security="tls").send_batch(envelopes(1))
    assert not outcome.accepted and outcome.failure and outcome.failure.retryable
    assert "certificate" in outcome.failure.detail.lower()


def test_envelopes_refuse_addresses_that_could_inject_commands() -> None:
    with pytest.raises(InvalidAddress):
        Envelope(FROM, "r@example.com>\r\nRCPT TO:<x@example.com", BODY, 1)
    # Surrounding whitespace (a CSV's line end) goes; nothing of it reaches a command.
    assert Envelope("a@b.example\r\n", " r@example.com", BODY, 1).mail_from == "a@b.example"
    with pytest.raises(TypeError):
        Envelope(FROM, "r@example.com", "text", 1)  # type: ignore[arg-type]


def test_envelope_repr_hides_the_message(samples: SimpleNamespace) -> None:
    data = build_message(render_email(samples.gift()), to_name="Zoë", to_addr="zoe@example.com")
    envelope = Envelope.for_message(data, rcpt_to="zoe@example.com", ref=3)
    assert samples.CODE.encode() in data
    assert samples.CODE not in repr(envelope)
    assert envelope.mail_from == "gifts@giftq.example"


def test_get_transport_is_process_wide_and_built_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with SmtpSink(port=0) as sink:
        monkeypatch.setenv("GIFTQ_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("GIFTQ_SMTP_BATCH_SIZE", "250")
        reset_settings()
        try:
            transport = get_transport()
            assert get_transport() is transport
            assert (transport.port, transport.batch_size, transport.security) == (sink.port, 250, "none")
            assert transport.send_batch(envelopes(2))[0].accepted
            assert sink.wait_for(2)
        finally:
            close_transport()
        assert get_transport() is not transport
        close_transport()


def test_transport_repr_shows_no_password() -> None:
    from delivery.channels.email import SmtpTransport

    transport = SmtpTransport("smtp.example", 587, security="starttls", username="u", password="hunter2")
    assert "hunter2" not in repr(transport)
    with pytest.raises(ValueError, match="password"):
        SmtpTransport("smtp.example", 587, username="u")
    with pytest.raises(ValueError, match="security"):
        SmtpTransport("smtp.example", 587, security="ssl")  # type: ignore[arg-type]


def test_no_claim_code_in_any_log_record(
    handlers: SimpleNamespace,
    make_smtp_server: Any,
    make_transport: Any,
    samples: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = handlers.DropAfterData("r1@example.com", "drop")
    server = make_smtp_server(handler)
    ctx = samples.gift()
    data = build_message(render_email(ctx), to_name=ctx.to_name, to_addr=ctx.to_addr)
    caplog.set_level("DEBUG")
    outcomes = make_transport(server).send_batch(
        [Envelope.for_message(data, rcpt_to=f"r{i}@example.com", ref=i) for i in range(3)]
    )
    assert [o.accepted for o in outcomes] == [True, False, True]
    assert caplog.records
    for record in caplog.records:
        assert samples.CODE not in record.getMessage(), record.name
        assert samples.CODE not in repr(record.args)
    assert all(samples.CODE not in repr(outcome) for outcome in outcomes)
