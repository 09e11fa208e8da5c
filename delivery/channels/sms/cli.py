"""``giftq sms-sink``: run the local stand-in for Twilio's Messages API in the foreground.

For the demo: start it, then set ``GIFTQ_SMS_BACKEND=sink`` (and
``GIFTQ_SMS_API_BASE_URL`` if it is not on ``127.0.0.1:8026``). Each accepted text is a
JSON file in ``--dir`` (default ``<GIFTQ_DATA_DIR>/sms``), mode 0600: its body holds a
claim code, so the folder is for development only.

The command line registers :data:`app` (``app.add_typer(cli.app, name="sms-sink")``);
:func:`main` runs it on its own (``main(["--port", "0"])``).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from delivery.channels.sms.sink import Reply, Report, SmsSink
from delivery.channels.sms.twilio import SINK_ACCOUNT_SID, SINK_AUTH_TOKEN
from giftq.settings import get_settings

app = typer.Typer(help="Run a local stand-in for Twilio's Messages API.")


@app.callback(invoke_without_command=True)
def sms_sink(
    *,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8026,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Folder to keep texts in (default: <GIFTQ_DATA_DIR>/sms).", file_okay=False
        ),
    ] = None,
    fail: Annotated[
        list[str] | None,
        typer.Option(help="NUMBER=CODE: refuse every text to NUMBER with this Twilio error (repeatable)."),
    ] = None,
    undelivered: Annotated[
        list[str] | None,
        typer.Option(help="NUMBER=CODE: accept, then report undelivered with this error (repeatable)."),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Do not print a line per text.")] = False,
) -> None:
    """Answer the Messages API on HOST:PORT and keep every accepted text, until Ctrl-C."""
    settings = get_settings()
    token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token else ""
    account_sid = settings.sms_account_sid
    if not account_sid and not token:
        account_sid, token = SINK_ACCOUNT_SID, SINK_AUTH_TOKEN
    if not account_sid or not token:
        raise typer.BadParameter("set both GIFTQ_SMS_ACCOUNT_SID and GIFTQ_SMS_AUTH_TOKEN, or neither")
    sink = SmsSink(
        directory or settings.data_dir / "sms",
        host=host,
        port=port,
        account_sid=account_sid,
        auth_token=token,
        on_message=None if quiet else _print_message,
    )
    for number, code in _pairs(fail, "--fail"):
        sink.numbers[number] = Reply.error(code)
    for number, code in _pairs(undelivered, "--undelivered"):
        sink.numbers[number] = Reply(report=Report.undelivered(code))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    with sink:
        typer.echo(f"giftq sms-sink listening on {sink.base_url}, writing to {sink.directory}", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    typer.echo(f"giftq sms-sink stopped after {len(sink.messages)} texts", err=True)


def _pairs(values: list[str] | None, option: str) -> list[tuple[str, int]]:
    pairs = []
    for value in values or []:
        number, _, code = value.partition("=")
        if not number.startswith("+") or not code.isdigit():
            raise typer.BadParameter(f"{option} takes NUMBER=CODE, like +15005550006=21610")
        pairs.append((number, int(code)))
    return pairs


def _print_message(resource: dict[str, Any]) -> None:
    # Never the body: it holds the claim code.
    sender = resource["from"] or resource["messaging_service_sid"]
    typer.echo(
        f"{time.strftime('%H:%M:%S')}  {sender} -> {resource['to']}  {resource['sid']}  "
        f"{resource['num_segments']} segment(s)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``giftq sms-sink`` with ``argv`` (without the program name); the exit status."""
    try:
        typer.main.get_command(app).main(args=argv, prog_name="giftq sms-sink")
    except SystemExit as exc:  # standalone mode ends with an exit, bad options with 2
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0
