"""The redeem address and its QR code, drawn as vector rectangles.

The address is the redeem page with the claim code in the fragment:
``<public_base_url>/<marketplace>/redeem#code=XXXX-XXXX-XXXX-XXXXX``. A browser never
sends a fragment to the server, so the code stays out of server and proxy logs and out
of ``Referer`` headers; the redeem page reads it from ``location.hash``.

The symbol is drawn as one filled rectangle per horizontal run of dark modules (about a
third as many rectangles as modules), black on white with the standard four-module quiet
zone, so it prints sharp at any resolution and any scanner reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import segno
from fpdf import FPDF

from delivery.channels.email.render import redeem_url

QUIET_ZONE = 4
"""Modules of white around the symbol, as ISO/IEC 18004 asks."""


def redeem_address(public_base_url: str, marketplace: str, grouped_code: str) -> str:
    """The redeem page with the code in the URL fragment, never in the path or query."""
    return f"{redeem_url(public_base_url, marketplace)}#code={grouped_code}"


def runs(address: str) -> tuple[int, list[tuple[int, int, int]]]:
    """The symbol's width in modules (quiet zone included) and its dark runs (row, start, length)."""
    symbol = segno.make_qr(address, error="m")
    matrix = symbol.matrix
    found: list[tuple[int, int, int]] = []
    for row, modules in enumerate(matrix):
        found.extend((row + QUIET_ZONE, start + QUIET_ZONE, length) for start, length in _dark(modules))
    return len(matrix) + 2 * QUIET_ZONE, found


def _dark(modules: bytearray) -> Iterator[tuple[int, int]]:
    start = None
    for column, dark in enumerate(modules):
        if dark and start is None:
            start = column
        elif not dark and start is not None:
            yield start, column - start
            start = None
    if start is not None:
        yield start, len(modules) - start


def draw(pdf: FPDF, address: str, x: float, y: float, size: float) -> None:
    """Draw the QR code of ``address`` as a ``size`` mm square, quiet zone included."""
    width, dark_runs = runs(address)
    module = size / width
    with pdf.local_context(fill_color=(255, 255, 255)):
        pdf.rect(x, y, size, size, style="F")
    with pdf.local_context(fill_color=(0, 0, 0)):
        # A hair of overlap so that no white seam shows between neighbouring runs.
        for row, start, length in dark_runs:
            pdf.rect(x + start * module, y + row * module, length * module + 0.01, module + 0.01, style="F")
