"""``giftq smtp-sink``: a local SMTP server that accepts and keeps every message.

For the demo and benchmarks: point ``GIFTQ_SMTP_HOST``/``GIFTQ_SMTP_PORT`` at it and
read what was sent as files in a Maildir (``<dir>/new/``), one file per message.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from delivery.channels.email.sink import SinkMessage, SmtpSink
from giftq.settings import get_settings

app = typer.Typer(help="Run a local SMTP sink.")

_headers = BytesHeaderParser()


@app.callback(invoke_without_command=True)
def smtp_sink(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8025,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Maildir to keep messages in (default: <GIFTQ_DATA_DIR>/mail).",
            file_okay=False,
        ),
    ] = None,
    discard: Annotated[bool, typer.Option(help="Keep nothing, only count (benchmarks).")] = False,
    quiet: Annotated[bool, typer.Option(help="Do not print a line per message.")] = False,
) -> None:
    """Accept every message on HOST:PORT and keep it in a Maildir, until Ctrl-C."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # aiosmtpd logs each SMTP command at INFO: four lines a message, and the slowest
        # part of the sink. Our own line per message (unless --quiet) says what arrived.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    maildir = None if discard else (directory or get_settings().data_dir / "mail")
    sink = SmtpSink(host, port, maildir, keep=not discard, on_message=None if quiet else _print_message)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Raise rather than set an Event: Event.set() from a signal handler can deadlock
        # on the lock the interrupted Event.wait() holds.
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    with sink:
        where = "discarding messages" if maildir is None else f"writing to {maildir / 'new'}"
        typer.echo(f"giftq smtp-sink listening on {host}:{sink.port}, {where}", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            # A second SIGTERM during shutdown ends the process at once.
            signal.signal(signal.SIGTERM, previous)
    typer.echo(f"giftq smtp-sink stopped after {sink.count} messages", err=True)


def _print_message(message: SinkMessage) -> None:
    # Headers only: the body of a gift email holds its claim code.
    subject = _headers.parsebytes(message.data).get("Subject", "")
    with contextlib.suppress(ValueError, LookupError):
        subject = str(make_header(decode_header(subject)))
    recipients = ", ".join(message.rcpt_tos)
    typer.echo(f"{time.strftime('%H:%M:%S')}  {message.mail_from} -> {recipients}  {subject}")
