"""Every kind of email, in every language, as SpamAssassin sees it: at most 1.0 points.

SpamAssassin runs with its stock rules and network tests off (``-L``), on all fifteen
messages in one run (``--mbox``: its start-up costs about two seconds). When the
``spamassassin`` program is missing the test is skipped, unless GIFTQ_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from delivery.channels.email import Attachment, build_message, render_email
from delivery.channels.printable import PrintableCard, render_printable
from ledger.codes import ClaimCode

MAX_SCORE = 1.0

# Shouting subject, HTML only, no Date, no To, an "act now" money pitch.
CONTROL = (
    b"From: WINNER <winner@giftq.example>\r\n"
    b"Subject: FREE GIFT CARD!!! CLAIM YOUR $1000 NOW!!!\r\n"
    b"Message-ID: <control@giftq.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=us-ascii\r\n"
    b"\r\n"
    b"<html><body><font size=7 color=red>CONGRATULATIONS!!! YOU HAVE WON A $1000 GIFT CARD"
    b"</font><br><a href=http://192.0.2.1/claim>CLICK HERE</a> to claim your prize NOW! "
    b"100% FREE, act now, limited time offer!!! Send your bank details.</body></html>\r\n"
)
MARKETPLACES = {"en": "US", "de": "DE", "fr": "FR"}


@pytest.fixture(scope="module")
def spamassassin() -> str:
    path = shutil.which("spamassassin")
    if path is None:
        message = "spamassassin is not installed (Debian: apt-get install spamassassin)"
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; GIFTQ_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    return path


def scores(spamassassin: str, messages: dict[str, bytes], home: Path) -> dict[str, tuple[float, str]]:
    """``{message id: (score, rules hit)}`` from one ``spamassassin -L -t --mbox`` run."""
    mbox = bytearray()
    for data in messages.values():
        body = data.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
        mbox += b"From gifts@giftq.example Mon Feb  1 10:30:00 2027\n" + body + b"\n"
    # A private HOME: no user preferences, no Bayes database, nothing left behind.
    result = subprocess.run(
        [spamassassin, "-L", "-t", "--mbox"],
        input=bytes(mbox),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},
        timeout=120,
        check=True,
    )
    found: dict[str, tuple[float, str]] = {}
    for chunk in re.split(rb"\nFrom gifts@giftq\.example ", b"\n" + result.stdout)[1:]:
        head = chunk.split(b"\n\n", 1)[0].replace(b"\n\t", b" ").replace(b"\n ", b" ").decode()
        message_id = re.search(r"^Message-ID: <([^>]+)>", head, re.MULTILINE | re.IGNORECASE)
        status = re.search(r"^X-Spam-Status: \w+, score=(-?\d+\.\d+) .*?tests=(.*?) autolearn=", head, re.M)
        assert message_id and status, head
        found[message_id.group(1)] = (float(status.group(1)), status.group(2).replace(" ", ""))
    return found


def _card_pdf(marketplace: str) -> Attachment:
    code = ClaimCode.generate().reveal()
    card = PrintableCard("Robin Receiver", "Pat Buyer", 2500, marketplace, "Happy birthday!", code)
    return Attachment("gift-card-robin-receiver-PW4N.pdf", "application/pdf", render_printable(card))


def test_every_email_scores_low(spamassassin: str, samples: SimpleNamespace, tmp_path: Path) -> None:
    messages: dict[str, bytes] = {}
    for language, marketplace in MARKETPLACES.items():
        for ctx in samples.every_kind(marketplace):
            message_id = f"{ctx.kind}.{language}@giftq.example"
            rendered = render_email(ctx)
            # A printable card goes out as it really does: with its PDF attached.
            attachments = [_card_pdf(marketplace)] if ctx.kind == "printable" else []
            messages[message_id] = build_message(
                rendered,
                to_name=ctx.to_name,
                to_addr=ctx.to_addr,
                message_id=message_id,
                attachments=attachments,
            )
    # A control: mail built the wrong way must score high, or this test measures nothing.
    messages["control@giftq.example"] = CONTROL
    results = scores(spamassassin, messages, tmp_path)
    assert set(results) == set(messages)
    control_score, control_rules = results.pop("control@giftq.example")
    assert control_score > MAX_SCORE * 3, (control_score, control_rules)
    report = "\n".join(f"{mid}: {score} {rules}" for mid, (score, rules) in sorted(results.items()))
    print(report)
    too_high = {mid: r for mid, r in results.items() if r[0] > MAX_SCORE}
    assert not too_high, f"scored above {MAX_SCORE}:\n{report}"
