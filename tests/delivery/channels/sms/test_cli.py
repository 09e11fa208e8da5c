"""``giftq sms-sink`` as a process: it serves, keeps texts, honours --fail, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from delivery.channels.sms import TwilioClient
from delivery.channels.sms.cli import main
from delivery.channels.sms.twilio import SINK_ACCOUNT_SID, SINK_AUTH_TOKEN

RUN = "import sys; from delivery.channels.sms.cli import main; sys.exit(main(sys.argv[1:]))"


def test_the_sink_command_serves_until_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    with subprocess.Popen(
        [sys.executable, "-c", RUN, "--port", "0", "--dir", str(folder), "--fail", "+15550001111=21610"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stderr is not None and process.stdout is not None
            banner = process.stderr.readline()
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
            assert match, banner
            client = TwilioClient(
                SINK_ACCOUNT_SID, SINK_AUTH_TOKEN, base_url=match.group(1), from_number="giftq"
            )
            accepted = client.send("+14155550123", "secret body", status_callback="http://127.0.0.1:9/s")
            refused = client.send("+15550001111", "secret body", status_callback="http://127.0.0.1:9/s")
            client.close()
            assert accepted.accepted
            assert (refused.accepted, refused.error_code) == (False, 21610)
            line = process.stdout.readline()
            assert accepted.message_sid in line and "+14155550123" in line and "secret" not in line
            kept = json.loads((folder / f"{accepted.message_sid}.json").read_text())
            assert kept["body"] == "secret body"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            assert "stopped after 1 texts" in process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()


def test_bad_options_exit_with_a_usage_error(capsys: object) -> None:
    assert main(["--fail", "not-a-pair"]) == 2
    assert main(["--help"]) == 0
