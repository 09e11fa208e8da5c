"""The SMTP sink: a round trip in memory and to a Maildir, and the giftq smtp-sink command."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from delivery.channels.email import (
    Envelope,
    SinkMessage,
    SmtpSink,
    SmtpTransport,
    build_message,
    render_email,
)
from giftq.settings import PROJECT_ROOT


def gift_message(samples: SimpleNamespace) -> bytes:
    ctx = samples.gift("FR")
    return build_message(render_email(ctx), to_name=ctx.to_name, to_addr=ctx.to_addr)


def test_round_trip_in_memory(samples: SimpleNamespace, make_transport: Any) -> None:
    data = gift_message(samples)
    with SmtpSink(port=0) as sink:
        transport = make_transport(sink)
        outcomes = transport.send_batch(
            [Envelope.for_message(data, rcpt_to=f"r{i}@example.com", ref=i) for i in range(20)]
        )
        assert all(o.accepted for o in outcomes)
        assert sink.wait_for(20, timeout=5)
        messages = sink.messages
    assert len(messages) == 20 and sink.count == 20
    first = messages[0]
    assert isinstance(first, SinkMessage)
    assert first == ("gifts@giftq.example", ("r0@example.com",), data)
    parsed = email.message_from_bytes(first.data)
    assert parsed["Content-Language"] == "fr"


def test_round_trip_to_a_maildir(samples: SimpleNamespace, make_transport: Any, tmp_path: Path) -> None:
    data = gift_message(samples)
    maildir = tmp_path / "mail"
    with SmtpSink(port=0, maildir=maildir) as sink:
        make_transport(sink).send_batch([Envelope.for_message(data, rcpt_to="zoe@example.com", ref=1)])
        assert sink.wait_for(1)
    files = list((maildir / "new").iterdir())
    assert len(files) == 1
    assert not list((maildir / "tmp").iterdir())
    stored = files[0].read_bytes()
    assert stored.startswith(b"Return-Path: <gifts@giftq.example>\r\nX-Original-To: zoe@example.com\r\n")
    assert stored.endswith(data)
    assert sink.messages == []  # Maildir mode keeps nothing in memory


def test_keep_false_only_counts(make_transport: Any) -> None:
    with SmtpSink(port=0, keep=False) as sink:
        make_transport(sink).send_batch([Envelope("a@giftq.example", "b@example.com", b"x\r\n", 1)])
        assert sink.wait_for(1)
        assert sink.messages == []
        sink.clear()
        assert sink.count == 0


def test_on_message_is_called_and_its_errors_do_not_reach_the_client(make_transport: Any) -> None:
    seen: list[SinkMessage] = []

    def callback(message: SinkMessage) -> None:
        seen.append(message)
        raise RuntimeError("display failed")

    with SmtpSink(port=0, on_message=callback) as sink:
        [outcome] = make_transport(sink).send_batch(
            [Envelope("a@giftq.example", "b@example.com", b"x\r\n", 1)]
        )
    assert outcome.accepted
    assert [m.rcpt_tos for m in seen] == [("b@example.com",)]


def test_a_busy_port_fails_at_start() -> None:
    with SmtpSink(port=0) as first, pytest.raises(OSError):
        SmtpSink(port=first.port).start()


def test_sink_takes_a_thousand_messages_quickly(make_transport: Any) -> None:
    with SmtpSink(port=0, keep=False) as sink:
        transport: SmtpTransport = make_transport(sink)
        batch = [
            Envelope("a@giftq.example", f"r{i}@example.com", b"Subject: x\r\n\r\nx\r\n", i)
            for i in range(1000)
        ]
        start = time.perf_counter()
        assert all(o.accepted for o in transport.send_batch(batch))
        elapsed = time.perf_counter() - start
    # Client and server share this process and its GIL; still far from a per-message fsync.
    assert elapsed < 10, f"{1000 / elapsed:.0f} messages/s"


def test_giftq_smtp_sink_command(tmp_path: Path, make_transport: Any) -> None:
    maildir = tmp_path / "maildir"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-c",
        "from delivery.cli import app; app()",
        "smtp-sink",
        "--port",
        "0",
        "--dir",
        str(maildir),
    ]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        banner = ""
        deadline = time.monotonic() + 20
        while "listening on" not in banner and time.monotonic() < deadline:
            banner = process.stderr.readline()
        assert "listening on 127.0.0.1:" in banner, banner
        port = int(banner.split("127.0.0.1:")[1].split(",")[0])
        server = SimpleNamespace(host="127.0.0.1", port=port)
        message = b"Subject: =?utf-8?b?SGFsbG8gWm/Dqw==?=\r\n\r\nHi\r\n"
        [outcome] = make_transport(server).send_batch(
            [Envelope("a@giftq.example", "zoe@example.com", message, 1)]
        )
        assert outcome.accepted
        line = process.stdout.readline()
        assert "a@giftq.example -> zoe@example.com  Hallo Zoë" in line
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "stopped after 1 messages" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert len(list((maildir / "new").iterdir())) == 1
