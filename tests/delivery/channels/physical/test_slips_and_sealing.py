"""The packing slips (a page per card, read back by a PDF reader and rendered by poppler)
and the sealed codes (only the vendor's private key opens them)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from PIL import Image
from pypdf import PdfReader

from delivery.channels.physical import manifest, slips
from delivery.channels.physical.errors import FulfilmentConfigError
from delivery.channels.physical.manifest import Batch, ManifestRow
from delivery.channels.physical.sealing import Sealer, from_settings
from giftq.db import utcnow
from giftq.settings import SettingsError, reset_settings
from ledger import ClaimCode


def row(**overrides: object) -> ManifestRow:
    fields: dict[str, object] = {
        "item_ref": "gq-41",
        "order_ref": "SHOP-1001",
        "order_line": 1,
        "marketplace": "DE",
        "design": "birthday",
        "amount_minor": 5000,
        "currency": "EUR",
        "amount_text": "50,00 €",
        "recipient_name": "Jürgen Müller",
        "address_line1": "Hauptstraße 12",
        "address_line2": "Hinterhaus",
        "city": "Köln",
        "region": "",
        "postal_code": "50667",
        "country": "DE",
        "sender_name": "Zoë Weiß",
        "message": "Alles Gute, Jürgen!\nBis Samstag.",
        "key_id": "00000000",
        "code_sealed": "c2VhbGVk",
    }
    fields.update(overrides)
    return ManifestRow(**fields)  # type: ignore[arg-type]


def test_a_slip_per_card_with_the_address_as_the_post_reads_it() -> None:
    rows = (
        row(),
        row(
            item_ref="gq-42",
            recipient_name="Robin Receiver",
            address_line1="1600 Pennsylvania Ave NW",
            address_line2="",
            city="Washington",
            region="DC",
            postal_code="20500",
            country="US",
            message="",
        ),
        row(item_ref="gq-43", city="London", postal_code="SW1A 1AA", country="GB", address_line2=""),
    )
    pdf = slips.render(Batch("GQ-20261201-000007", utcnow(), rows), "Giftq")
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) == 3
    assert all("GQ-20261201-000007" in p for p in pages)
    assert "Jürgen Müller\nHauptstraße 12\nHinterhaus\n50667 Köln\nGermany" in pages[0]
    assert "Alles Gute, Jürgen!\nBis Samstag." in pages[0] and "Zoë Weiß" in pages[0]
    assert "Washington, DC 20500\nUnited States" in pages[1]
    assert "London\nSW1A 1AA\nUnited Kingdom" in pages[2]
    assert "1 gift card, design: Birthday" in pages[0]
    assert "50,00" not in pages[0]  # a gift slip shows no price


def test_the_slip_renders_to_an_image(tmp_path: Path) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        message = "pdftoppm is not installed (Debian: apt-get install poppler-utils)"
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; GIFTQ_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    (tmp_path / "slips.pdf").write_bytes(slips.render(Batch("GQ-1", utcnow(), (row(),)), "Giftq"))
    subprocess.run(
        [pdftoppm, "-r", "72", "-png", str(tmp_path / "slips.pdf"), str(tmp_path / "slip")], check=True
    )
    (png,) = tmp_path.glob("slip*.png")
    with Image.open(png) as image:
        assert image.size[0] == 420 and image.size[1] in (595, 596)  # A5 (148 x 210 mm) at 72 dpi
        gray = image.convert("L")
        header = gray.crop((30, 30, 390, 110)).histogram()  # the brand line and the item ref, large
        assert sum(header[:100]) > 500
        assert sum(gray.crop((30, 450, 390, 560)).histogram()[:200]) == 0  # blank below the message


def test_only_the_vendors_private_key_opens_a_sealed_code() -> None:
    vendor, stranger = PrivateKey.generate(), PrivateKey.generate()
    sealer = Sealer(bytes(vendor.public_key))
    code = ClaimCode.generate()
    sealed = sealer.seal(code)
    assert len(sealed) == 92 and code.reveal() not in sealed
    assert SealedBox(vendor).decrypt(base64.b64decode(sealed)).decode() == code.reveal()
    assert sealer.seal(code) != sealed  # a fresh ephemeral key each time
    with pytest.raises(CryptoError):
        SealedBox(stranger).decrypt(base64.b64decode(sealed))
    assert sealer.key_id == bytes(vendor.public_key)[:4].hex()


def test_no_vendor_key_no_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FulfilmentConfigError, match="GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY is not set"):
        from_settings()
    monkeypatch.setenv("GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY", "not base64!")
    reset_settings()
    with pytest.raises(SettingsError, match="GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY"):
        from_settings()


def test_the_manifest_is_rfc4180_csv_with_the_documented_columns() -> None:
    data = manifest.to_csv(Batch("GQ-9", utcnow(), (row(recipient_name='Robin "Rob", Jr.'),)))
    lines = data.decode().split("\r\n")
    assert lines[0] == ",".join(manifest.COLUMNS)
    assert '"Robin ""Rob"", Jr."' in lines[1] and '"Alles Gute, Jürgen!\nBis Samstag."' in data.decode()
    assert manifest.parse_item_ref(" gq-41 ") == 41
    assert manifest.parse_item_ref("gq-0") is None and manifest.parse_item_ref("GQ-41") is None
