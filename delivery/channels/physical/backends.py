"""How a batch reaches the vendor: a file drop or an HTTP post, one small interface.

:class:`Backend` has one call, ``hand_over(batch, slips_pdf) -> answer``: it returns the
vendor's acceptance as one line, or raises. Both back ends mean the same by it:
returned = the vendor has the batch (``sent``); raised = it has not, or we cannot know
(the batch's cards go back on the retry schedule and come again in a later batch).

**File drop** (``GIFTQ_FULFILMENT_BACKEND=file``): the batch is a folder named after it in
``GIFTQ_FULFILMENT_DROP_DIR``::

    GQ-20250601-000017/
        manifest.csv         one row per card (see manifest.py), codes sealed
        packing-slips.pdf    one page per card, in manifest order

written under a hidden temporary name (``.GQ-20250601-000017.<random>.tmp``), flushed to
disk, then renamed into place in one step: a folder whose name does not start with a
dot is always complete. The vendor takes (moves or deletes) folders when it has them.

**HTTP** (``GIFTQ_FULFILMENT_BACKEND=http``): ``POST GIFTQ_FULFILMENT_HTTP_URL`` with the
JSON of :func:`delivery.channels.physical.manifest.to_json` and the headers
``Idempotency-Key: <batch name>``, ``Authorization: Bearer <GIFTQ_FULFILMENT_HTTP_TOKEN>``.
The vendor answers 2xx when it has the batch, 409 when it had it already (the same
batch sent again after a crash: also accepted); 429, 5xx, timeouts and lost
connections are retried; any other answer fails the batch's cards for good (ops see it
and replay them once the cause is fixed).

The vendor's side of the contract, for both: a batch name is processed once, and an
``item_ref`` is produced once whatever batch it comes in (a run that died after the
hand-over sends the same cards again; the vendor must answer as before and ship nothing
twice).
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path
from typing import ClassVar, Protocol

import httpx

from delivery.channels.physical import manifest
from delivery.channels.physical.errors import FulfilmentConfigError, HandOverFailed
from delivery.channels.physical.manifest import Batch
from giftq.settings import get_settings
from ledger.codes.redact import redact

MANIFEST_FILE = "manifest.csv"
SLIPS_FILE = "packing-slips.pdf"


class Backend(Protocol):
    name: ClassVar[str]

    def hand_over(self, batch: Batch, slips_pdf: bytes) -> str: ...

    def close(self) -> None: ...


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileDrop:
    """Batches as folders in a drop directory, each renamed into place complete."""

    name: ClassVar[str] = "file"

    def __init__(self, drop_dir: Path) -> None:
        self.drop_dir = drop_dir

    def hand_over(self, batch: Batch, slips_pdf: bytes) -> str:
        final = self.drop_dir / batch.name
        if final.exists():
            # A run that died after the rename: the vendor has this batch already.
            return f"{batch.name}/ was already in the drop folder"
        self.drop_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.drop_dir.glob(f".{batch.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)  # a half-written try of this very batch
        temporary = self.drop_dir / f".{batch.name}.{uuid.uuid4().hex[:8]}.tmp"
        temporary.mkdir()
        try:
            _write(temporary / SLIPS_FILE, slips_pdf)
            _write(temporary / MANIFEST_FILE, manifest.to_csv(batch))
            _fsync_dir(temporary)
            try:
                temporary.rename(final)
            except OSError:
                if final.exists():  # another run of the same batch won the race
                    return f"{batch.name}/ was already in the drop folder"
                raise
        finally:
            if temporary.exists():
                shutil.rmtree(temporary, ignore_errors=True)
        _fsync_dir(self.drop_dir)
        return f"dropped {batch.name}/ ({len(batch.rows)} cards)"

    def close(self) -> None:
        pass


class HttpVendor:
    """Batches posted as JSON; one keep-alive client per process."""

    name: ClassVar[str] = "http"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise FulfilmentConfigError("GIFTQ_FULFILMENT_HTTP_URL must be an http(s) URL")
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        # Made on first use, so that a forked worker process makes its own.
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, transport=self._transport)
        return self._client

    def hand_over(self, batch: Batch, slips_pdf: bytes) -> str:
        body = manifest.to_json(batch, base64.b64encode(slips_pdf).decode("ascii"))
        response = self._http().post(
            self.url, json=body, headers={**self._headers, "Idempotency-Key": batch.name}
        )
        answer = redact(f"HTTP {response.status_code} {response.reason_phrase}: {response.text[:500]}")[:300]
        if response.is_success:
            return answer
        if response.status_code == 409:
            return f"{answer} (the vendor had {batch.name} already)"
        raise HandOverFailed(answer, status=response.status_code)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def drop_dir() -> Path:
    settings = get_settings()
    return settings.fulfilment_drop_dir or settings.data_dir / "fulfilment" / "drop"


def from_settings() -> Backend:
    settings = get_settings()
    if settings.fulfilment_backend == "file":
        return FileDrop(drop_dir())
    if settings.fulfilment_backend == "http":
        if not settings.fulfilment_http_url:
            raise FulfilmentConfigError("GIFTQ_FULFILMENT_BACKEND=http needs GIFTQ_FULFILMENT_HTTP_URL")
        token = settings.fulfilment_http_token
        return HttpVendor(
            settings.fulfilment_http_url,
            token=token.get_secret_value() if token else None,
            timeout=settings.fulfilment_http_timeout_seconds,
        )
    raise FulfilmentConfigError("GIFTQ_FULFILMENT_BACKEND is none: physical cards have no back end")
