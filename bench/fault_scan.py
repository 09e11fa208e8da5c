"""The secrets scan of a fault run: every claim code issued in the run, looked for
everywhere it must not be.

The codes come from the database itself (each card's code decrypted with the run's
keys, :func:`ledger.reveal_codes`). A code counts as found in any case, with its dashes
or without: the text is upper-cased and its dashes dropped, then every 17-character
run of letters and digits in it is looked up among the codes.

Places scanned: every Redis database (keys, and values of every type) and the
append-only file; every log file of the run; every text, JSON and binary column of
every table; the metrics of the API and of each worker; every file of the fulfilment
drop folder (PDFs read as text too); any PDF kept on disk. Exempt, and why:

- ``ledger_cards.code_hash`` and ``code_ciphertext``: a keyed hash and an AES-GCM
  ciphertext, not the code;
- the messages the relay and the text provider accepted: they are the gifts;
- the manifest's ``code_sealed`` column is scanned like the rest: sealed, the code is
  not in it in any form this scan (or anyone without the vendor's key) could read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

EXEMPT_COLUMNS = {("ledger_cards", "code_hash"), ("ledger_cards", "code_ciphertext")}
_RUN = re.compile(r"[0-9A-Z]{17,}")
_TEXT_TYPES = ("text", "character varying", "character", "bytea", "json", "jsonb")


def normalized(code: str) -> str:
    return code.replace("-", "").upper()


def codes_in(content: str | bytes, codes: set[str]) -> set[str]:
    """Which of ``codes`` (normalized) appear in ``content``, in any case, dashed or not."""
    if isinstance(content, bytes):
        content = content.decode("latin-1")
    found = set()
    for run in _RUN.findall(content.upper().replace("-", "")):
        if len(run) == 17:
            if run in codes:
                found.add(run)
            continue
        found.update(run[i : i + 17] for i in range(len(run) - 16) if run[i : i + 17] in codes)
    return found


@dataclass
class ScanReport:
    """Where codes were found (place -> how many), and what was scanned."""

    scanned: dict[str, int] = field(default_factory=dict)
    """Place -> how many items (keys, files, rows ...) were read."""
    found: dict[str, int] = field(default_factory=dict)
    exempt: list[str] = field(default_factory=list)

    def add(self, place: str, items: Iterable[str | bytes], codes: set[str]) -> None:
        count = hits = 0
        for item in items:
            count += 1
            hits += len(codes_in(item, codes))
        self.scanned[place] = self.scanned.get(place, 0) + count
        if hits:
            self.found[place] = self.found.get(place, 0) + hits


def redis_items(url: str) -> Iterator[Any]:
    """Every key and every value (strings, lists, hashes, sets, sorted sets) of every database."""
    first = redis.Redis.from_url(url)
    try:
        databases = int(first.config_get("databases").get("databases") or 16)
    finally:
        first.close()
    for db in range(databases):
        client = redis.Redis.from_url(url, db=db)
        try:
            for key in client.scan_iter(count=500):
                yield key
                kind = str(client.type(key), "ascii")
                if kind == "string":
                    yield client.get(key) or b""
                elif kind == "list":
                    yield from client.lrange(key, 0, -1)
                elif kind == "hash":
                    for name, value in client.hgetall(key).items():
                        yield name
                        yield value
                elif kind == "set":
                    yield from client.smembers(key)
                elif kind == "zset":
                    yield from client.zrange(key, 0, -1)
                elif kind == "stream":
                    yield repr(client.xrange(key)).encode()
        finally:
            client.close()


def database_items(session: Session) -> Iterator[str]:
    """Every value of every text, JSON and binary column (bytes as their printable form)."""
    columns = session.execute(
        text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(:types) ORDER BY table_name, column_name"
        ),
        {"types": list(_TEXT_TYPES)},
    ).all()
    for table, column, kind in columns:
        if (table, column) in EXEMPT_COLUMNS:
            continue
        expression = f"encode(\"{column}\", 'escape')" if kind == "bytea" else f'"{column}"::text'
        for (value,) in session.execute(
            text(f'SELECT {expression} FROM "{table}"')
        ):  # names from the catalogue
            if value:
                yield value


def file_items(paths: Iterable[Path]) -> Iterator[bytes | str]:
    """Each file's bytes, and a PDF's text as well (its content streams are compressed)."""
    for path in paths:
        yield path.read_bytes()
        if path.suffix.lower() == ".pdf":
            yield pdf_text(path)


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def metrics_items(urls: Iterable[str]) -> Iterator[str]:
    for url in urls:
        yield httpx.get(url, timeout=30, trust_env=False).text
