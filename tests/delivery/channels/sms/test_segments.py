"""Segment counting: known boundaries by hand, and the GSM-7 alphabet against the gsm0338 codec.

No well-kept PyPI library counts SMS segments, so the reference for the alphabet and
the septet cost is ``gsm0338`` (a GSM 03.38 codec: an extension character encodes as
escape + character, two bytes), and the boundaries are computed by hand below.
"""

from __future__ import annotations

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from delivery.channels.sms.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    SegmentCount,
    count_segments,
    fold_if_gsm7,
    is_gsm7,
    to_gsm7,
)

G, U = Encoding.GSM7, Encoding.UCS2
EMOJI = "\U0001f381"  # wrapped present: outside the BMP, two UTF-16 units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentCount(G, 0, 1)),
        ("a" * 160, SegmentCount(G, 160, 1)),
        ("a" * 161, SegmentCount(G, 161, 2)),
        ("a" * 153 * 2, SegmentCount(G, 306, 2)),
        ("a" * (153 * 2 + 1), SegmentCount(G, 307, 3)),
        ("a" * 153 * 3, SegmentCount(G, 459, 3)),
        # Extension characters cost two septets.
        ("€" * 80, SegmentCount(G, 160, 1)),
        ("€" * 80 + "a", SegmentCount(G, 161, 2)),
        ("a" * 159 + "€", SegmentCount(G, 161, 2)),
        ("a" * 158 + "[]", SegmentCount(G, 162, 2)),
        # An escape pair never straddles segments: 152 + (€) + 152 = 306 septets, three segments.
        ("a" * 152 + "€" + "a" * 152, SegmentCount(G, 306, 3)),
        ("a" * 153 + "€" + "a" * 151, SegmentCount(G, 306, 2)),
        # GSM-7 has capital Ç only; one ç makes the whole text UCS-2.
        ("Ç" * 160, SegmentCount(G, 160, 1)),
        ("a" * 69 + "ç", SegmentCount(U, 70, 1)),
        ("a" * 70 + "ç", SegmentCount(U, 71, 2)),
        ("ж" * 70, SegmentCount(U, 70, 1)),
        ("ж" * 71, SegmentCount(U, 71, 2)),
        ("ж" * 67 * 2, SegmentCount(U, 134, 2)),
        ("ж" * (67 * 2 + 1), SegmentCount(U, 135, 3)),
        # Emoji are two UTF-16 code units, and a surrogate pair is never cut.
        (EMOJI * 35, SegmentCount(U, 70, 1)),
        (EMOJI * 35 + "a", SegmentCount(U, 71, 2)),
        ("a" * 69 + EMOJI, SegmentCount(U, 71, 2)),
        ("ж" * 66 + EMOJI + "ж" * 66, SegmentCount(U, 134, 3)),
        ("ж" * 67 + EMOJI + "ж" * 65, SegmentCount(U, 134, 2)),
        # Line breaks are ordinary GSM-7 characters.
        ("line\nline\r\n", SegmentCount(G, 11, 1)),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, str) else None,
)
def test_known_counts(text: str, expected: SegmentCount) -> None:
    assert count_segments(text) == expected


def _gsm0338_septets(char: str) -> int | None:
    try:
        return len(char.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def test_alphabet_matches_the_gsm0338_codec_over_the_whole_bmp() -> None:
    """Every BMP character: in GSM-7 exactly when the codec encodes it, at the codec's cost."""
    differences = []
    for point in range(0x10000):
        char = chr(point)
        if 0xD800 <= point <= 0xDFFF or char == "\x1b":
            continue  # lone surrogates are not text; 0x1B is the escape itself, not a character
        expected = _gsm0338_septets(char)
        ours = count_segments(char).units if is_gsm7(char) else None
        if ours != expected:
            differences.append((hex(point), ours, expected))
    assert differences == []
    assert len(GSM7_BASIC) == 128
    assert {_gsm0338_septets(c) for c in GSM7_EXTENSION} == {2}


def _segments_of_encoded(encoded: bytes) -> int:
    """An independent count over the codec's bytes: 153 per part, never after a lone escape."""
    if len(encoded) <= 160:
        return 1
    parts, used, index = 1, 0, 0
    while index < len(encoded):
        size = 2 if encoded[index] == 0x1B else 1
        if used + size > 153:
            parts, used = parts + 1, 0
        used += size
        index += size
    return parts


gsm_text = st.text(alphabet=st.sampled_from(GSM7_BASIC.replace("\x1b", "") + GSM7_EXTENSION), max_size=700)


@given(gsm_text)
def test_gsm_counts_agree_with_the_codec(text: str) -> None:
    encoded = text.encode("gsm03.38")
    assert count_segments(text) == SegmentCount(G, len(encoded), _segments_of_encoded(encoded))


@given(st.text(min_size=1, max_size=300).filter(lambda t: not is_gsm7(t)))
def test_ucs2_units_are_utf16_code_units(text: str) -> None:
    count = count_segments(text)
    units = len(text.encode("utf-16-le")) // 2
    assert (count.encoding, count.units) == (U, units)
    assert count.segments == 1 if units <= 70 else count.segments >= -(-units // 67)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Zoë", "Zoe"),
        ("François", "Francois"),
        ("Jérôme Deschênes", "Jérome Deschenes"),  # é is GSM-7 and stays
        ("Łucja Wiśniewska", "Lucja Wisniewska"),
        ("Yūki Satō", "Yuki Sato"),
        ("Mary-Ellen O\u2019Connell", "Mary-Ellen O'Connell"),
        ("25,00\xa0€", "25,00 €"),
        ("2\u202f500,00\xa0€", "2 500,00 €"),
        ("￥5,000", "¥5,000"),
        ("Wait…", "Wait..."),
        ("Müller", "Müller"),
    ],
)
def test_fold_to_gsm7(text: str, folded: str) -> None:
    assert fold_if_gsm7(text) == folded
    assert is_gsm7(folded)


def test_text_that_stays_ucs2_is_not_changed() -> None:
    # Folding ë would gain nothing: the kanji keep the text in UCS-2 anyway.
    assert fold_if_gsm7("山田 Zoë") == "山田 Zoë"
    assert fold_if_gsm7("Zoë " + EMOJI) == "Zoë " + EMOJI
    assert to_gsm7("山田 Zoë") == "山田 Zoe"
