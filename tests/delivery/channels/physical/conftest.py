"""Fixtures of the physical-card tests: a vendor with a key pair, a drop folder and an
inbox, orders with physical lines, and helpers to read a batch as the vendor does.

- ``vendor``: the vendor's side: its private key, the drop folder and the inbox; its
  ``batches()`` are the complete batch folders, ``open(row)`` decrypts a row's code
  with the private key, ``report(name, rows)`` drops a report file atomically.
- ``physical_order(lines=..., **line)``: an order of physical lines, placed and issued.
- ``cutoff_batch(Session)``: the batch a cut-off makes (what beat's task runs).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey, SealedBox

from delivery.channels import registry
from delivery.channels.physical import batches
from delivery.channels.physical.cutoff import next_cutoff
from delivery.dispatch import BatchReport
from giftq.db import utcnow
from giftq.settings import reset_settings

US_ADDRESS = {
    "line1": "1600 Pennsylvania Ave NW",
    "city": "Washington",
    "region": "DC",
    "postal_code": "20500",
    "country": "US",
}


@dataclass
class Vendor:
    key: PrivateKey
    drop: Path
    inbox: Path

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self.key.public_key)).decode()

    def batches(self) -> list[Path]:
        """Complete batch folders in the drop, oldest name first (what the vendor picks up)."""
        if not self.drop.is_dir():
            return []
        return sorted(p for p in self.drop.iterdir() if p.is_dir() and not p.name.startswith("."))

    def rows(self, folder: Path) -> list[dict[str, str]]:
        text = (folder / "manifest.csv").read_bytes().decode("utf-8")
        return list(csv.DictReader(io.StringIO(text, newline="")))

    def open(self, row: dict[str, Any]) -> str:
        """The claim code of a manifest row, decrypted with the vendor's private key."""
        sealed = base64.b64decode(row["code_sealed"])
        return SealedBox(self.key).decrypt(sealed).decode("ascii")

    def report(self, name: str, rows: list[dict[str, str]], columns: tuple[str, ...] | None = None) -> Path:
        """Drop a report file as the contract says: a hidden name, then renamed to *.csv."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        columns = columns or ("item_ref", "event", "carrier", "tracking_number", "tracking_url", "detail")
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        hidden = self.inbox / f".{name}.tmp"
        hidden.write_text(buffer.getvalue(), encoding="utf-8")
        final = self.inbox / name
        hidden.rename(final)
        return final


@pytest.fixture
def vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendor]:
    """The vendor of this test; settings point the file back end at its folders."""
    found = Vendor(PrivateKey.generate(), tmp_path / "vendor" / "drop", tmp_path / "vendor" / "inbox")
    monkeypatch.setenv("GIFTQ_FULFILMENT_BACKEND", "file")
    monkeypatch.setenv("GIFTQ_FULFILMENT_DROP_DIR", str(found.drop))
    monkeypatch.setenv("GIFTQ_FULFILMENT_INBOX_DIR", str(found.inbox))
    monkeypatch.setenv("GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY", found.public_key)
    monkeypatch.setenv("GIFTQ_EMAIL_FROM", "Giftq <gifts@giftq.example>")
    reset_settings()
    registry.close_all()
    yield found
    registry.close_all()


def physical_line(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "channel": "physical",
        "amount": 2500,
        "marketplace": "US",
        "design": "birthday",
        "message": "Happy birthday, Robin!\nLove, Pat",
        "recipient": {"name": "Robin Receiver", "address": dict(US_ADDRESS)},
    }
    line.update(overrides)
    return line


@pytest.fixture
def physical_order(Session: Any) -> Any:
    """``physical_order(lines=1, key=..., purchaser=..., **line) -> order_id``: placed and issued."""
    from delivery import place_order
    from delivery.orders import processing

    counter = iter(range(1_000_000))

    def make(
        lines: int = 1, key: str | None = None, purchaser: dict[str, str] | None = None, **line: Any
    ) -> int:
        order = {
            "purchaser": purchaser or {"name": "Pat Buyer", "email": "pat@example.com"},
            "reference": f"SHOP-{next(counter)}",
            "lines": [physical_line(**line) for _ in range(lines)],
        }
        placed = place_order(order, idempotency_key=key or f"physical-{next(counter)}")
        while True:
            with Session.begin() as s:
                if processing.issue_next_chunk(s, placed.order_id).done:
                    return placed.order_id

    return make


def cutoff_batch(sessions: Any) -> BatchReport:
    """What ``giftq.fulfilment_batch`` does at the next cut-off, run now."""
    return batches.run(sessions, release_due=next_cutoff(utcnow()))


@pytest.fixture
def run_cutoff() -> Any:
    return cutoff_batch
