"""Printable benchmark: PDFs per second through ``render_printable``, against bare fpdf2.

    python -m bench.printable [--seconds 8]

In one process, on the same cards (US English, German with a long message, Japanese,
French; four designs; a fresh claim code each):

1. ``render_printable``: the product, fonts parsed once per process (goal: 100 PDFs/s);
2. the anchor, a bare fpdf2 page with the same content: the same text, the same font
   files and the same QR code (one rectangle per dark module), drawn directly with
   ``add_font`` / ``multi_cell`` / ``cell`` / ``rect``, as fpdf2 is used out of the box
   (goal: ``render_printable`` at least 0.5 of its rate);
3. the same bare page with the fonts lent by ``fonts.install`` instead of ``add_font``:
   what the page costs once font loading is out of the way, so the last ratio is the
   price of fitting, wrapping and the design.

Each measure runs for ``--seconds`` of wall time after a warm-up, and reports CPU time
per PDF too: on a shared machine the wall rate moves with the neighbours' load.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench._anchors import table

GOAL_PER_SECOND = 100.0
GOAL_RATIO = 0.5


def _bench_environment() -> None:
    os.environ.setdefault("GIFTQ_ENV", "development")
    os.environ.setdefault("GIFTQ_DATA_DIR", tempfile.mkdtemp(prefix="giftq-bench-"))
    os.environ.setdefault("GIFTQ_CODE_PEPPER", base64.b64encode(secrets.token_bytes(32)).decode())
    os.environ.setdefault("GIFTQ_CODE_KEYS", "bench:" + base64.b64encode(secrets.token_bytes(32)).decode())


def _cards() -> list[Any]:
    from delivery.channels.printable import PrintableCard
    from ledger.codes import ClaimCode

    german = (
        "Lieber Jürgen, alles Gute zum Geburtstag! Ich wünsche dir ein wunderbares Jahr voller "
        "Freude, Gesundheit und Überraschungen. Lass es dir gut gehen und feier schön! "
    ) * 3
    japanese = "お誕生日おめでとうございます！素敵な一年になりますように。いつもありがとう。"  # noqa: RUF001
    specs = [
        ("Robin Receiver", "Pat Buyer", 2500, "US", "Happy birthday!\nLove, Pat", "birthday"),
        ("Jürgen Großmann", "Françoise Dupont", 5000, "DE", german[:500], "classic"),
        ("山田 太郎", "佐藤 花子", 5000, "JP", japanese, "holiday"),
        ("Élodie Lefèvre", "Marc", 100000, "FR", "Merci pour tout !", "thank_you"),
    ]
    return [
        PrintableCard(to, by, amount, market, message, ClaimCode.generate().reveal(), design)
        for to, by, amount, market, message, design in specs
    ]


# --- the anchor: a bare fpdf2 page with the same content ------------------------------------


def _bare_page(content: Any, lend_fonts: bool) -> bytes:
    from fpdf import FPDF

    from delivery.channels.printable import fonts, page, qr

    pdf = FPDF(unit="mm")
    if lend_fonts:
        fonts.install(pdf, content.recipient_name + content.sender_name + content.message)
    else:
        for face in fonts.FACES:
            if face.family == fonts.SANS:
                pdf.add_font(face.family, face.style, str(fonts.FONT_DIR / face.file))
        pdf.set_fallback_fonts([fonts.SANS], exact_match=False)
    width, height = page.PAPER[content.paper]
    pdf.add_page(format=(width, height))
    pdf.set_auto_page_break(False)
    words = content.wording
    pdf.set_xy(14, 14)
    pdf.set_font(fonts.SANS, "B", 26)
    pdf.cell(0, 12, words.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.SANS, "B", 40)
    pdf.cell(0, 18, content.amount, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.SANS, "", 15)
    pdf.cell(90, 8, f"{words.for_label} {content.recipient_name}")
    pdf.cell(90, 8, f"{words.from_label} {content.sender_name}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.SANS, "", 12)
    pdf.multi_cell(180, 6, content.message, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(height / 2 + 9)
    pdf.set_font(fonts.SANS, "B", 11)
    pdf.cell(0, 6, words.code_heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.SANS, "B", 26)
    pdf.cell(0, 12, content.grouped_code, new_x="LMARGIN", new_y="NEXT")
    size, dark = qr.runs(content.address)
    module = 40 / size
    for row, start, length in dark:
        for column in range(start, start + length):
            pdf.rect(width - 54 + column * module, height / 2 + 9 + row * module, module, module, style="F")
    pdf.set_font(fonts.SANS, "", 9.5)
    pdf.multi_cell(130, 5, words.scan, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(height / 2 + 60)
    pdf.set_font(fonts.SANS, "B", 11)
    pdf.cell(0, 6, words.redeem_heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.SANS, "", 9.5)
    for number, step in enumerate(words.steps, start=1):
        pdf.multi_cell(
            180, 5, f"{number}. {step.replace('{url}', content.redeem_page)}", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.set_font(fonts.SANS, "B", 10.5)
    pdf.cell(0, 6, words.private_heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.SANS, "", 9.5)
    pdf.multi_cell(180, 5, words.private, new_x="LMARGIN", new_y="NEXT")
    if lend_fonts:
        fonts.trim(pdf)
    return bytes(pdf.output())


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    pdfs: int
    wall: float
    cpu: float

    @property
    def per_second(self) -> float:
        return self.pdfs / self.wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.pdfs


def _measure(make: Callable[[int], bytes], seconds: float, count: int) -> Rate:
    for i in range(count):  # warm-up: one of each card
        make(i)
    done = 0
    wall, cpu = time.perf_counter(), time.process_time()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        make(done % count)
        done += 1
    return Rate(done, time.perf_counter() - wall, time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="wall time per measure")
    args = parser.parse_args()
    _bench_environment()

    from delivery.channels.printable import fonts, render_printable
    from delivery.channels.printable.render import page_content

    started = time.perf_counter()
    fonts.warm()
    warm_ms = 1000 * (time.perf_counter() - started)
    cards = _cards()
    contents = [page_content(card) for card in cards]

    product = _measure(lambda i: render_printable(cards[i]), args.seconds, len(cards))
    bare = _measure(lambda i: _bare_page(contents[i], lend_fonts=False), args.seconds, len(cards))
    bare_lent = _measure(lambda i: _bare_page(contents[i], lend_fonts=True), args.seconds, len(cards))

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; one process")
    print(f"fonts parsed once per process in {warm_ms:.0f} ms\n")
    rows = [
        (
            "bare fpdf2 page, add_font per PDF (anchor)",
            f"{bare.per_second:,.1f}",
            f"{bare.cpu_ms:.1f}",
            "1.00",
        ),
        (
            "render_printable",
            f"{product.per_second:,.1f}",
            f"{product.cpu_ms:.1f}",
            f"{product.per_second / bare.per_second:.2f}",
        ),
        (
            "bare fpdf2 page, fonts lent by fonts.install",
            f"{bare_lent.per_second:,.1f}",
            f"{bare_lent.cpu_ms:.1f}",
            f"{bare_lent.per_second / bare.per_second:.2f}",
        ),
    ]
    print(table(rows, ("measure", "PDFs/s", "CPU ms/PDF", "x anchor")))
    ratio = product.per_second / bare.per_second
    cpu_rate = 1000 / product.cpu_ms
    print()
    print(
        f"render_printable: {product.per_second:,.1f} PDFs/s wall, {cpu_rate:,.1f} PDFs/s of CPU "
        f"(goal {GOAL_PER_SECOND:.0f}: {'met' if product.per_second >= GOAL_PER_SECOND else 'missed'})"
    )
    verdict = "met" if ratio >= GOAL_RATIO else "missed"
    print(f"ratio to the bare fpdf2 page: {ratio:.2f} (goal {GOAL_RATIO}: {verdict})")
    print(
        f"ratio to the bare page with lent fonts: {product.per_second / bare_lent.per_second:.2f} "
        "(the cost of fitting, wrapping and the design)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
