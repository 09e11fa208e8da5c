"""What a batch tells the vendor: one row per card, as CSV (file drop) or JSON (HTTP).

Columns, in this order (UTF-8, RFC 4180: comma-separated, double-quoted where needed,
CRLF line ends, a header row; a personal message may hold line breaks inside its quotes):

================  ================================================================
batch_id          the batch's name (its folder; the HTTP ``Idempotency-Key``)
item_ref          ``gq-<n>``: this card's shipment, unique forever; reports name it
order_ref         the storefront's order reference (or ``GQ-<order id>``)
order_line        the order line's position, from 1
marketplace       US, CA, UK, DE, FR, JP
design            the card design to print (templates/designs/<design>)
amount_minor      the value in minor units (cents; yen have none)
currency          ISO 4217
amount_text       the value as the marketplace writes it (``$25.00``, ``25,00 €``)
recipient_name    ship-to name
address_line1/2   ship-to street lines (line 2 may be empty)
city, region      ship-to city; state, province or prefecture (may be empty)
postal_code       ship-to postal code, in its country's canonical form
country           ISO 3166-1 alpha-2
sender_name       who gives the card (the purchaser)
message           the personal message to print (may be empty)
key_id            first four bytes (hex) of the vendor key the code is sealed to
code_sealed       the claim code, sealed to that key (:mod:`.sealing`): base64
valid_until       the card's last valid day (``YYYY-MM-DD``, UTC); empty: it does not
                  expire. The card and the packing slip print it, or "does not expire"
terms_url         where the card's terms are, printed on the card and the slip
================  ================================================================

The claim code appears nowhere else: not in the packing slips, not in a file name, not
in a log. A row's ``item_ref`` is stable across re-sends; the vendor must not produce an
``item_ref`` twice (a rerun after a crash, or a batch re-sent by ops, repeats rows).
Cells are data, not spreadsheet formulas: open the file with a CSV reader, not a
spreadsheet that evaluates cells starting with ``=``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from babel.numbers import format_currency

from ledger.marketplaces import get_marketplace

COLUMNS: tuple[str, ...] = (
    "batch_id",
    "item_ref",
    "order_ref",
    "order_line",
    "marketplace",
    "design",
    "amount_minor",
    "currency",
    "amount_text",
    "recipient_name",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "sender_name",
    "message",
    "key_id",
    "code_sealed",
    "valid_until",
    "terms_url",
)

_ITEM_REF = re.compile(r"^gq-([1-9][0-9]{0,17})$")


def item_ref(delivery_id: int) -> str:
    """The vendor's name for the shipment of one gift delivery."""
    return f"gq-{delivery_id}"


def parse_item_ref(value: str) -> int | None:
    """The delivery id an ``item_ref`` names, or None if it is not one of ours."""
    match = _ITEM_REF.match(value.strip())
    return int(match.group(1)) if match else None


def amount_text(amount: int, marketplace: str) -> str:
    market = get_marketplace(marketplace)
    value = Decimal(amount).scaleb(-market.minor_units)
    return str(format_currency(value, market.currency, locale=market.locale))


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One card of a batch. ``code_sealed`` is the sealed code, never the code."""

    item_ref: str
    order_ref: str
    order_line: int
    marketplace: str
    design: str
    amount_minor: int
    currency: str
    amount_text: str
    recipient_name: str
    address_line1: str
    address_line2: str
    city: str
    region: str
    postal_code: str
    country: str
    sender_name: str
    message: str
    key_id: str
    code_sealed: str = field(repr=False)
    valid_until: str = ""
    """``YYYY-MM-DD``, the card's last valid day; empty: it does not expire."""
    terms_url: str = ""


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch as it goes to the vendor."""

    ref: str
    created_at: dt.datetime
    rows: tuple[ManifestRow, ...]
    resend: int = 0
    """0 the first time; n for the n-th re-send by ops (named ``<ref>.r<n>``)."""

    @property
    def name(self) -> str:
        return self.ref if not self.resend else f"{self.ref}.r{self.resend}"


def to_csv(batch: Batch) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in batch.rows:
        record = {"batch_id": batch.ref, **asdict(row)}
        writer.writerow([record[column] for column in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def to_json(batch: Batch, packing_slips_pdf: str) -> dict[str, Any]:
    """The HTTP body: the same rows, and the packing slips as base64 (``packing_slips_pdf``)."""
    return {
        "batch_id": batch.ref,
        "resend": batch.resend,
        "created_at": batch.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "cards": [asdict(row) for row in batch.rows],
        "packing_slips_pdf": packing_slips_pdf,
    }
