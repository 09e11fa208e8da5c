"""The wire message: structure, headers, encodings, and no header injection."""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import Message
from types import SimpleNamespace

import pytest

from delivery.channels.email import Attachment, InvalidAddress, build_message, render_email
from delivery.channels.email.message import header_line, normalize_address, subject_value
from giftq.settings import reset_settings


def parse(data: bytes) -> Message:
    return email.message_from_bytes(data)


def decoded(message: Message, name: str) -> str:
    return str(make_header(decode_header(message[name])))


def build(ctx: object, **kwargs: str) -> bytes:
    rendered = render_email(ctx)  # type: ignore[arg-type]
    return build_message(rendered, to_name=ctx.to_name, to_addr=ctx.to_addr, **kwargs)  # type: ignore[attr-defined]


def body(part: Message) -> str:
    """A part's decoded text, with the wire's CRLF back to the newlines it was written with."""
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "ascii").replace("\r\n", "\n")


def header_block(data: bytes) -> bytes:
    return data.partition(b"\r\n\r\n")[0]


def test_gift_message_has_text_and_html_alternatives(samples: SimpleNamespace) -> None:
    data = build(samples.gift("DE"))
    message = parse(data)
    assert message.get_content_type() == "multipart/alternative"
    parts = message.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, html = (body(part) for part in parts)
    assert "25,00\xa0€" in text and "25,00\xa0€" in html
    assert samples.CODE in text
    # In HTML each group of the code is a span of its own: the groups, in order.
    assert re.search(">" + "-</span><wbr><span[^>]*>".join(samples.CODE.split("-")) + "<", html)
    assert text == render_email(samples.gift("DE")).text
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)


def test_headers(samples: SimpleNamespace) -> None:
    message = parse(build(samples.gift("FR"), message_id="<delivery-42.1@giftq.example>"))
    assert message["From"] == "Giftq <gifts@giftq.example>"
    assert decoded(message, "To") == "Zoë Müller <zoe@example.com>"
    assert decoded(message, "Subject") == "Eve Smith vous a envoyé une carte cadeau de 25,00\xa0€"
    assert message["Message-ID"] == "<delivery-42.1@giftq.example>"
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == "fr"
    assert email.utils.parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Reply-To"] is None
    assert message["Auto-Submitted"] is None  # the gift is from a person, not a notice


def test_purchaser_notices_are_auto_submitted(samples: SimpleNamespace) -> None:
    for ctx in (samples.confirmation(), samples.delivered(), samples.failed()):
        assert parse(build(ctx))["Auto-Submitted"] == "auto-generated"


def test_reply_to_when_configured(samples: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_EMAIL_REPLY_TO", "Giftq Support <support@giftq.example>")
    reset_settings()
    assert parse(build(samples.gift()))["Reply-To"] == "Giftq Support <support@giftq.example>"


def test_message_id_is_generated_on_the_sender_domain(samples: SimpleNamespace) -> None:
    first = parse(build(samples.gift()))["Message-ID"]
    second = parse(build(samples.gift()))["Message-ID"]
    assert re.fullmatch(r"<[^<>@\s]+@giftq\.example>", first)
    assert first != second


@pytest.mark.parametrize(
    "name", ["Zoë Müller", "山田太郎", "Ωμέγα Ελληνικά", "Renée O'Brien-Smith", 'Quote "Me" \\ Now']
)
def test_display_names_round_trip(samples: SimpleNamespace, name: str) -> None:
    ctx = samples.gift(recipient_name=name)
    message = email.message_from_bytes(build(ctx), policy=email.policy.default)
    assert message["To"].addresses[0].display_name == name
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"


def test_no_header_injection_through_names(samples: SimpleNamespace) -> None:
    evil = "Eve\r\nBcc: victim@example.com"
    ctx = samples.gift(sender_name=evil, recipient_name="Zoë\nX-Injected: yes\rCc: a@example.com")
    data = build(ctx)
    head = header_block(data)
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert b"Bcc" not in names and b"X-Injected" not in names and b"Cc" not in names
    message = parse(data)
    assert message["Bcc"] is None and message["X-Injected"] is None and message["Cc"] is None
    assert decoded(message, "Subject").startswith("Eve Bcc: victim@example.com sent you")
    assert message["To"].count("<zoe@example.com>") == 1


def test_no_header_injection_through_a_rendered_subject(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift())
    forged = type(rendered)(subject="Hi\r\nBcc: victim@example.com", text=rendered.text, html=rendered.html)
    message = parse(build_message(forged, to_name="Zoë", to_addr="zoe@example.com"))
    assert message["Bcc"] is None
    assert message["Subject"] == "Hi Bcc: victim@example.com"


@pytest.mark.parametrize(
    "address",
    [
        "zoe@example.com\r\nRCPT TO:<x@example.com>",
        "Zoë <zoe@example.com>",
        "zoe@exa mple.com",
        "<zoe@example.com>",
        "zoe",
        "zoë@example.com",
        "zoe@-example.com",
        "",
    ],
)
def test_bad_recipient_addresses_are_refused(samples: SimpleNamespace, address: str) -> None:
    with pytest.raises(InvalidAddress):
        build_message(render_email(samples.gift()), to_name="Zoë", to_addr=address)


def test_internationalised_domain_becomes_idna() -> None:
    assert normalize_address("zoe@bücher.example") == "zoe@xn--bcher-kva.example"
    assert normalize_address(" zoe@localhost ") == "zoe@localhost"


@pytest.mark.parametrize("bad", ["no-at-sign", "<a@b> <c@d>", "a b@c", "a@b\r\nX: y"])
def test_bad_message_ids_are_refused(samples: SimpleNamespace, bad: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        build(samples.gift(), message_id=bad)


def test_wire_format_is_crlf_7bit_and_short_lines(samples: SimpleNamespace) -> None:
    long_name = "Bartholomew " * 30 + "山田太郎" * 30
    ctx = samples.gift(recipient_name=long_name, sender_name=long_name, message="x" * 2000)
    data = build(ctx)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert all(byte < 128 for byte in data)
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    message = parse(data)
    assert not message.defects
    assert all(not part.defects for part in message.get_payload())


def test_long_ascii_subject_words_are_encoded_not_overlong() -> None:
    value = subject_value("x" * 200)
    assert value.startswith("=?utf-8?b?")
    assert max(len(line) for line in header_line("Subject", value).split(b"\r\n")) <= 78


def test_header_line_refuses_raw_line_breaks() -> None:
    with pytest.raises(ValueError):
        header_line("Subject", "a\r\nBcc: b@example.com")


def test_a_line_starting_with_a_dot_survives(samples: SimpleNamespace) -> None:
    data = build(samples.gift(message=".\n.hidden\nFrom here"))
    text = body(parse(data).get_payload()[0])
    assert "    .\n    .hidden\n    From here\n" in text


def test_building_a_message_is_cheap(samples: SimpleNamespace) -> None:
    import time

    rendered = render_email(samples.gift("DE"))
    start = time.perf_counter()
    for _ in range(200):
        build_message(rendered, to_name="Zoë Müller", to_addr="zoe@example.com")
    per_message = (time.perf_counter() - start) / 200
    # ~0.1 ms here; the bound only catches a return to the pure-Python encoders (~2.6 ms).
    assert per_message < 0.0015


# --- attachments --------------------------------------------------------------------------

PDF_BYTES = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def test_an_attachment_follows_the_text_in_a_mixed_message(samples: SimpleNamespace) -> None:
    ctx = samples.printable("DE")
    rendered = render_email(ctx)
    data = build_message(
        rendered,
        to_name=ctx.to_name,
        to_addr=ctx.to_addr,
        attachments=[Attachment("gift-card-robin-receiver-H2PW.pdf", "application/pdf", PDF_BYTES)],
    )
    message = parse(data)
    assert not message.defects
    assert message.get_content_type() == "multipart/mixed"
    alternative, pdf = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    assert body(alternative.get_payload()[0]) == rendered.text
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_filename() == "gift-card-robin-receiver-H2PW.pdf"
    assert pdf["Content-Transfer-Encoding"] == "base64"
    assert pdf.get_payload(decode=True) == PDF_BYTES
    # A reader of the modern API finds the text body and one attachment, as a client does.
    modern = email.message_from_bytes(data, policy=email.policy.default)
    assert modern.get_body(preferencelist=("plain",)) is not None  # type: ignore[attr-defined]
    assert [a.get_filename() for a in modern.iter_attachments()] == ["gift-card-robin-receiver-H2PW.pdf"]  # type: ignore[attr-defined]
    # Still 7-bit, CRLF only, and no line near the limits.
    assert all(byte < 128 for byte in data)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78


def test_without_attachments_the_message_stays_alternative(samples: SimpleNamespace) -> None:
    assert parse(build(samples.printable())).get_content_type() == "multipart/alternative"


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "card.pdf\r\nBcc: x@example.com",
        'card".pdf',
        ".hidden.pdf",
        "carte-ü.pdf",
        "a b.pdf",
        "card..pdf",
        "",
        "x" * 97 + ".pdf",
    ],
)
def test_unsafe_file_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="attachment filename"):
        Attachment(name, "application/pdf", PDF_BYTES)


def test_an_attachment_needs_a_content_type_and_bytes() -> None:
    with pytest.raises(ValueError, match="content_type"):
        Attachment("card.pdf", "application/pdf; name=x", PDF_BYTES)
    with pytest.raises(TypeError, match="bytes"):
        Attachment("card.pdf", "application/pdf", "text")  # type: ignore[arg-type]
    assert "data" not in repr(Attachment("card.pdf", "application/pdf", PDF_BYTES))
