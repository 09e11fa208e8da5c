"""DKIM: our signatures verify with dkimpy, break when the message is changed."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from delivery.channels.email import Attachment, DkimConfigError, build_message, render_email
from delivery.channels.email.dkim import DkimSigner, signer_from_settings
from giftq.settings import get_settings, reset_settings

DOMAIN = "giftq.example"
SELECTOR = "mail2027"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def dns_for(key: rsa.RSAPrivateKey) -> Callable[..., bytes | None]:
    """A resolver that knows one TXT record: the selector's public key."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return dnsfunc


@pytest.fixture
def dkim_env(rsa_key: rsa.RSAPrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key_path = tmp_path / "dkim.pem"
    key_path.write_bytes(pem(rsa_key))
    monkeypatch.setenv("GIFTQ_DKIM_DOMAIN", DOMAIN)
    monkeypatch.setenv("GIFTQ_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("GIFTQ_DKIM_PRIVATE_KEY_PATH", str(key_path))
    monkeypatch.setenv("GIFTQ_EMAIL_REPLY_TO", "Giftq Support <support@giftq.example>")
    reset_settings()
    return key_path


def build_all(samples: SimpleNamespace) -> list[bytes]:
    messages = []
    for marketplace in ("US", "DE", "JP"):
        for ctx in samples.every_kind(marketplace):
            messages.append(build_message(render_email(ctx), to_name=ctx.to_name, to_addr=ctx.to_addr))
    return messages


def test_every_kind_of_message_verifies(
    dkim_env: Path, rsa_key: rsa.RSAPrivateKey, samples: SimpleNamespace
) -> None:
    dnsfunc = dns_for(rsa_key)
    for data in build_all(samples):
        assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert dkim.verify(data, dnsfunc=dnsfunc)


def test_signature_covers_headers_and_body(
    dkim_env: Path, rsa_key: rsa.RSAPrivateKey, samples: SimpleNamespace
) -> None:
    dnsfunc = dns_for(rsa_key)
    data = build_message(render_email(samples.gift()), to_name="Zoë", to_addr="zoe@example.com")
    assert not dkim.verify(data.replace(b"$25.00", b"$95.00"), dnsfunc=dnsfunc)
    assert not dkim.verify(data.replace(b"zoe@example.com", b"eve@example.com"), dnsfunc=dnsfunc)
    # Over-signed From/To/Subject: adding a second one breaks the signature.
    head, _, rest = data.partition(b"\r\n\r\n")
    added = head + b"\r\nSubject: Act now" + b"\r\n\r\n" + rest
    assert not dkim.verify(added, dnsfunc=dnsfunc)
    # Relaxed canonicalisation: refolding and trailing spaces on the way do not matter.
    assert dkim.verify(data.replace(b"\r\n", b"  \r\n", 3), dnsfunc=dnsfunc)


def test_a_message_with_an_attachment_verifies_and_covers_the_file(
    dkim_env: Path, rsa_key: rsa.RSAPrivateKey, samples: SimpleNamespace
) -> None:
    dnsfunc = dns_for(rsa_key)
    pdf = Attachment(
        "gift-card-robin-receiver-H2PW.pdf", "application/pdf", b"%PDF-1.7\n" + b"\x00\xff" * 3000
    )
    ctx = samples.printable()
    data = build_message(render_email(ctx), to_name=ctx.to_name, to_addr=ctx.to_addr, attachments=[pdf])
    assert dkim.verify(data, dnsfunc=dnsfunc)
    head, _, rest = data.partition(b"Content-Transfer-Encoding: base64\r\n\r\n")
    assert not dkim.verify(head + _ + rest.replace(b"A", b"B", 1), dnsfunc=dnsfunc)


def test_signed_header_list(dkim_env: Path, samples: SimpleNamespace) -> None:
    data = build_message(render_email(samples.confirmation()), to_name="Pat", to_addr="pat@example.com")
    signature = data.split(b"\r\n\r\n")[0].split(b"\r\nDate:")[0].replace(b"\r\n ", b" ")
    h = signature.split(b" h=")[1].split(b";")[0].replace(b" ", b"")
    assert h.split(b":") == [
        b"from", b"reply-to", b"to", b"subject", b"date", b"message-id", b"mime-version",
        b"content-type", b"content-language", b"auto-submitted", b"from", b"to", b"subject",
    ]  # fmt: skip


def test_no_dkim_when_not_configured(samples: SimpleNamespace) -> None:
    assert signer_from_settings(get_settings()) is None
    data = build_message(render_email(samples.gift()), to_name="Zoë", to_addr="zoe@example.com")
    assert b"DKIM-Signature" not in data


def test_half_configured_dkim_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_DKIM_DOMAIN", DOMAIN)
    reset_settings()
    with pytest.raises(DkimConfigError, match="together"):
        signer_from_settings(get_settings())


def test_missing_or_wrong_key_is_an_error(
    dkim_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GIFTQ_DKIM_PRIVATE_KEY_PATH", str(tmp_path / "nope.pem"))
    reset_settings()
    with pytest.raises(DkimConfigError, match="cannot read"):
        signer_from_settings(get_settings())
    with pytest.raises(DkimConfigError, match="RSA"):
        DkimSigner.from_pem(DOMAIN, SELECTOR, pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(DkimConfigError, match="PEM"):
        DkimSigner.from_pem(DOMAIN, SELECTOR, b"not a key")


def test_key_is_loaded_once_and_reloaded_when_the_file_changes(
    dkim_env: Path, rsa_key: rsa.RSAPrivateKey, samples: SimpleNamespace
) -> None:
    first = signer_from_settings(get_settings())
    assert signer_from_settings(get_settings()) is first
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    dkim_env.write_bytes(pem(new_key))
    stat = dkim_env.stat()
    os.utime(dkim_env, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    rotated = signer_from_settings(get_settings())
    assert rotated is not first
    data = build_message(render_email(samples.gift()), to_name="Zoë", to_addr="zoe@example.com")
    assert dkim.verify(data, dnsfunc=dns_for(new_key))
    assert not dkim.verify(data, dnsfunc=dns_for(rsa_key))


def test_signer_repr_shows_no_key(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = DkimSigner.from_pem(DOMAIN, SELECTOR, pem(rsa_key))
    assert repr(signer) == f"DkimSigner(domain='{DOMAIN}', selector='{SELECTOR}')"
