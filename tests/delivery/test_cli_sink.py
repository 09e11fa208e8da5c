from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any


def test_smtp_sink_keeps_each_message_as_an_eml_file_in_a_maildir(tmp_path: Path, conftest: Any) -> None:
    folder = tmp_path / "mail"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_") or k.startswith("GIFTQ_TEST_")}
    with subprocess.Popen(
        [str(Path(sys.executable).with_name("giftq")), "smtp-sink", "--port", "0", "--dir", str(folder)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as sink:
        try:
            assert sink.stderr is not None
            listening = sink.stderr.readline()
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", listening)
            assert found, listening
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Héllo"
            message.set_content("a gift")
            with smtplib.SMTP("127.0.0.1", int(found.group(1)), timeout=10) as client:
                client.send_message(message)
            (stored,) = conftest.wait_until(lambda: list((folder / "new").iterdir()), what="the message file")
        finally:
            sink.send_signal(signal.SIGTERM)
            sink.wait(20)

    # A mail program opens the file by its name; a Maildir reader opens the folder.
    assert stored.suffix == ".eml"
    parsed = email.message_from_bytes(stored.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Héllo" and parsed["X-Original-To"] == "b@example.com"
    (read,) = mailbox.Maildir(folder, factory=None, create=False)
    assert read["X-Original-To"] == "b@example.com"
