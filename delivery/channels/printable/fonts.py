"""The page's fonts, parsed once per process and lent to every PDF.

Four OFL faces ship in ``font_files/`` (how they were cut is in ``font_files/subset.py``):
``sans`` (Giftq Sans JP: Latin, Greek, Cyrillic, kana and the JIS kanji) in regular and
bold, and ``hebrew`` and ``arabic`` as fallbacks for right-to-left names and messages.
A character none of them has is replaced before drawing (:mod:`.text`), so nothing is
ever drawn as an empty box.

Why this module exists: fpdf2 parses a font file in ``add_font`` (about 40 ms for the
Japanese face) and at ``output()`` subsets the parsed font in place, so a font object
cannot simply be shared between documents. Measured by ``bench.printable`` on the same
page: about 100 ms of CPU per PDF with ``add_font`` per document, about 20 ms with the
fonts lent by this module (of which some 6 ms are fpdf2 embedding the two subsets). Here:

- each face is parsed once per process into a prototype ``TTFFont`` (cmap, widths, glyph
  ids, descriptor: all read-only afterwards), and :func:`install` gives a document a
  shallow copy with its own subset map;
- just before ``output()``, :func:`trim` swaps each copy's fontTools font for a small one
  built from the prototype's glyphs that the document used, which fpdf2 then subsets and
  embeds as usual (glyphs are matched by name, so the embedded subset is the same).

This leans on fpdf2's ``TTFFont`` attributes (pinned to 2.8.x in pyproject.toml); the
tests render and read back every design, so an incompatible fpdf2 fails them at once.
Prototypes are per process and not shared between threads (Celery's prefork pool runs
one render at a time per process).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont, newTable
from fontTools.ttLib.tables._c_m_a_p import CmapSubtable
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

FONT_DIR = Path(__file__).resolve().parent / "font_files"

SANS = "sans"
HEBREW = "hebrew"
ARABIC = "arabic"


@dataclass(frozen=True, slots=True)
class Face:
    family: str
    style: str
    """fpdf2's style letters: "" or "B"."""
    file: str

    @property
    def key(self) -> str:
        return self.family + self.style


FACES: tuple[Face, ...] = (
    Face(SANS, "", "GiftqSansJP-Regular.ttf"),
    Face(SANS, "B", "GiftqSansJP-Bold.ttf"),
    Face(HEBREW, "", "GiftqSansHebrew-Regular.ttf"),
    Face(ARABIC, "", "GiftqSansArabic-Regular.ttf"),
)

# Tables of a TrueType font besides the per-glyph ones that the small font copies.
_SHARED_TABLES = ("head", "hhea", "maxp", "OS/2", "name", "post", "cvt ", "fpgm", "prep", "gasp")
_lock = threading.Lock()


@cache
def _prototypes() -> dict[str, TTFFont]:
    with _lock:
        host = FPDF()
        prototypes: dict[str, TTFFont] = {}
        for face in FACES:
            font = TTFFont(host, FONT_DIR / face.file, face.key, face.style)
            if "GSUB" in font.ttfont:
                # Right-to-left faces are shaped by HarfBuzz; its font object is read-only.
                _ = font.hbfont
            prototypes[face.key] = font
        return prototypes


def covered() -> frozenset[int]:
    """Every code point some face can draw."""
    return _covered()


@cache
def _covered() -> frozenset[int]:
    return frozenset(c for font in _prototypes().values() for c in font.cmap)


def warm() -> None:
    """Parse the fonts now (a worker calls this at start so the first PDF is not slow)."""
    _covered()


def install(pdf: FPDF, text: str) -> None:
    """Lend the faces to ``pdf``: ``pdf.set_font("sans", "B", 12)`` works afterwards.

    A fallback face is added only when ``text`` (everything the page will show) needs it:
    each face costs a subset and a font object in every PDF it is part of.
    """
    prototypes = _prototypes()
    sans = prototypes[SANS].cmap
    needed = {c for c in map(ord, text) if c not in sans}
    fallbacks = [SANS]
    for face in FACES:
        prototype = prototypes[face.key]
        if face.family != SANS:
            if needed.isdisjoint(prototype.cmap):
                continue
            fallbacks.append(face.family)
        font = copy.copy(prototype)
        font.i = len(pdf.fonts) + 1
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font.subset = SubsetMap(font)
        pdf.fonts[face.key] = font
    pdf.set_fallback_fonts(fallbacks, exact_match=False)


def trim(pdf: FPDF) -> None:
    """Before ``pdf.output()``: give each face a font of only the glyphs the page used."""
    prototypes = _prototypes()
    for key, font in pdf.fonts.items():
        prototype = prototypes.get(key)
        if prototype is None or not isinstance(font, TTFFont) or font.ttfont is not prototype.ttfont:
            continue
        used = [g for g, _ in font.subset.items() if g is not None]
        font.ttfont = _small_font(prototype.ttfont, (g.glyph_name for g in used), _unicodes(used))


@cache
def _skeleton(master: TTFont) -> dict[str, Any]:
    """The master's tables that are not per glyph, with only the names a PDF needs.

    The name table of the Japanese face holds names in a dozen languages; the subsetter
    would drop all but these anyway, after paying for copying them.
    """
    tables = {tag: copy.deepcopy(master[tag]) for tag in _SHARED_TABLES if tag in master}
    names: Any = tables["name"]
    names.names = [n for n in names.names if n.nameID <= 6 and n.platformID == 3 and n.langID == 0x409]
    return tables


def _unicodes(glyphs: Iterable[Any]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for glyph in glyphs:
        for code in glyph.unicode if isinstance(glyph.unicode, tuple) else ():
            mapping[code] = glyph.glyph_name
    return mapping


def _small_font(master: TTFont, names: Iterable[str], unicodes: dict[int, str]) -> TTFont:
    """A new font holding ``names`` (and .notdef) from ``master``; ``master`` is not changed.

    Glyph outlines are shared, not copied: fpdf2's subsetter only reads them.
    """
    master_glyf: Any = master["glyf"]
    wanted = set(names)
    composites: set[str] = set()
    pending = list(wanted)
    while pending:  # a composite glyph needs its components
        name = pending.pop()
        components = master_glyf.glyphs[name].getComponentNames(master_glyf)
        if components:
            composites.add(name)
        for component in components:
            if component not in wanted:
                wanted.add(component)
                pending.append(component)
    wanted.discard(".notdef")
    order = [".notdef", *sorted(wanted, key=master.getGlyphID)]
    small = TTFont(recalcBBoxes=False)  # simple outlines stay as their bytes: nothing to recompute
    small.sfntVersion = master.sfntVersion
    for tag, table in _skeleton(master).items():
        small[tag] = copy.deepcopy(table)
    small.setGlyphOrder(order)
    glyf: Any = newTable("glyf")
    glyf.glyphOrder = order
    # A simple glyph's bytes hold no glyph ids and are shared as they are (glyf[n] would
    # decode them); a composite's bytes name its parts by id in the master's order, so it is
    # taken decoded (by name) and encoded again for the new order.
    glyf.glyphs = {n: master_glyf[n] if n in composites else master_glyf.glyphs[n] for n in order}
    small["glyf"] = glyf
    small["loca"] = newTable("loca")
    master_hmtx: Any = master["hmtx"]
    hmtx: Any = newTable("hmtx")
    hmtx.metrics = {n: master_hmtx.metrics[n] for n in order}
    small["hmtx"] = hmtx
    cmap: Any = newTable("cmap")
    cmap.tableVersion = 0
    subtable = CmapSubtable.newSubtable(12)
    subtable.platformID, subtable.platEncID, subtable.language = 3, 10, 0
    subtable.cmap = {code: name for code, name in unicodes.items() if name in wanted}
    cmap.tables = [subtable]
    small["cmap"] = cmap
    maxp: Any = small["maxp"]
    maxp.numGlyphs = len(order)
    return small
