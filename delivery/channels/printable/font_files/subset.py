"""Make the font files in this folder from the upstream Noto fonts (a maintainer's tool).

    python -m delivery.channels.printable.font_files.subset \\
        --cjk-regular NotoSansCJK-Regular.ttc --cjk-bold NotoSansCJK-Bold.ttc \\
        --hebrew NotoSansHebrew-Regular.ttf --arabic NotoSansArabic-Regular.ttf

The inputs are the upstream OFL files (Debian: ``fonts-noto-cjk`` and ``fonts-noto-core``);
the outputs are committed, so a fresh machine needs nothing but pip. What is kept, and why:

- ``GiftqSansJP-Regular.ttf``: the Japanese face of Noto Sans CJK cut down to Latin (with
  Latin-1, Extended-A/B and Additional), Greek, Cyrillic, punctuation and common symbols,
  kana, and the kanji of JIS X 0208 levels 1 and 2 plus the NEC/IBM extensions of
  Windows-31J (names such as 髙 and 﨑): what Japanese names and messages use. About
  8,700 glyphs instead of 65,535.
- ``GiftqSansJP-Bold.ttf``: the bold face for the amount, the code and the headings only:
  Latin, currency signs, and every character of the page's fixed wording (``text/*.json``).
- ``GiftqSansHebrew-Regular.ttf``, ``GiftqSansArabic-Regular.ttf``: fallbacks for
  right-to-left names and messages, with their shaping tables.

The CJK outlines are converted from CFF to TrueType (quadratic) curves: fpdf2 subsets a
TrueType font per PDF in a fraction of the time a CFF font takes (measured: 48 ms against
90 ms per page with the whole font; see ``fonts.py`` for how that is avoided per page), and
git compresses it better. Layout tables are dropped from the CJK faces (Japanese needs
no shaping; the page sets text horizontally). Names say "Giftq" because the OFL asks that
a modified font not pass for the original.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

HERE = Path(__file__).resolve().parent
TEXT_DIR = HERE.parent / "text"

LATIN_AND_SYMBOLS = [
    (0x0020, 0x007E), (0x00A0, 0x024F), (0x0300, 0x036F), (0x0370, 0x03FF), (0x0400, 0x04FF),
    (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x218F), (0x2190, 0x21FF),
    (0x2200, 0x22FF), (0x2460, 0x24FF), (0x2500, 0x257F), (0x25A0, 0x25FF), (0x2600, 0x26FF),
    (0x2700, 0x27BF), (0x3000, 0x30FF), (0x31F0, 0x31FF), (0x3200, 0x33FF), (0xFF00, 0xFFEF),
]  # fmt: skip
BOLD_RANGES = [(0x0020, 0x007E), (0x00A0, 0x017F), (0x2010, 0x2044), (0x20A0, 0x20CF), (0xFFE5, 0xFFE5)]
ARABIC_RANGES = [(0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF), (0x0020, 0x007E)]


def _ranges(ranges: Iterable[tuple[int, int]]) -> set[int]:
    return {c for low, high in ranges for c in range(low, high + 1)}


def _double_byte(codec: str, leads: Iterable[int], trails: Iterable[int]) -> set[int]:
    found: set[int] = set()
    trails = list(trails)
    for lead in leads:
        for trail in trails:
            try:
                found.update(ord(c) for c in bytes([lead, trail]).decode(codec))
            except UnicodeDecodeError:
                continue
    return found


def japanese() -> set[int]:
    """JIS X 0208 (every row, so levels 1 and 2) and the Windows-31J extension kanji."""
    jis = _double_byte("euc_jp", range(0xA1, 0xFF), range(0xA1, 0xFF))
    extensions = _double_byte("cp932", [0x87, 0xED, 0xEE, 0xFA, 0xFB, 0xFC], range(0x40, 0xFD))
    return jis | extensions


def wording() -> set[int]:
    chars: set[int] = set()
    for path in TEXT_DIR.glob("*.json"):
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                chars.update(ord(c) for c in item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return chars


def _subset(font: TTFont, unicodes: set[int], *, keep_layout: bool) -> None:
    options = subset.Options()
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.drop_tables += ["VORG", "vhea", "vmtx"]
    if keep_layout:
        options.layout_features = ["*"]
    else:
        options.layout_features = []
        options.drop_tables += ["GSUB", "GPOS", "GDEF"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(unicodes))
    subsetter.subset(font)


def _to_truetype(font: TTFont) -> None:
    """CFF cubic outlines to TrueType quadratic ones (fontTools' otf2ttf recipe)."""
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf: Any = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    del font["CFF "]
    maxp: Any = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for field in (
        "maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
        "maxStackElements", "maxSizeOfInstructions", "maxComponentElements",
    ):  # fmt: skip
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    maxp.numGlyphs = len(order)
    font["maxp"] = maxp
    post: Any = font["post"]
    post.formatType = 3.0  # no glyph names: they are synthesised from the cmap on loading
    font.sfntVersion = "\x00\x01\x00\x00"


def _rename(font: TTFont, family: str, style: str) -> None:
    name: Any = font["name"]
    full = f"{family} {style}"
    postscript = f"{family.replace(' ', '')}-{style}"
    for record in list(name.names):
        if record.nameID in (1, 16):
            name.setName(family, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID in (3, 4):
            name.setName(full, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:
            name.setName(postscript, record.nameID, record.platformID, record.platEncID, record.langID)
    name.names = [r for r in name.names if r.nameID not in (17, 21, 22)]


def _cjk(collection: Path, unicodes: set[int], out: Path, style: str) -> None:
    font = TTCollection(str(collection)).fonts[0]  # face 0: Noto Sans CJK JP
    _subset(font, unicodes, keep_layout=False)
    _to_truetype(font)
    _rename(font, "Giftq Sans JP", style)
    font.save(str(out))


def _plain(source: Path, unicodes: set[int] | None, out: Path, family: str) -> None:
    font = TTFont(str(source))
    if unicodes is not None:
        _subset(font, unicodes, keep_layout=True)
    _rename(font, family, "Regular")
    font.save(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cjk-regular", type=Path, required=True)
    parser.add_argument("--cjk-bold", type=Path, required=True)
    parser.add_argument("--hebrew", type=Path, required=True)
    parser.add_argument("--arabic", type=Path, required=True)
    args = parser.parse_args()
    regular = _ranges(LATIN_AND_SYMBOLS) | japanese() | wording()
    _cjk(args.cjk_regular, regular, HERE / "GiftqSansJP-Regular.ttf", "Regular")
    _cjk(args.cjk_bold, _ranges(BOLD_RANGES) | wording(), HERE / "GiftqSansJP-Bold.ttf", "Bold")
    _plain(args.hebrew, None, HERE / "GiftqSansHebrew-Regular.ttf", "Giftq Sans Hebrew")
    _plain(args.arabic, _ranges(ARABIC_RANGES), HERE / "GiftqSansArabic-Regular.ttf", "Giftq Sans Arabic")
    for path in sorted(HERE.glob("*.ttf")):
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
