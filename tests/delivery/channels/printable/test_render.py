"""Every design in every marketplace renders to a one-page PDF that real readers read back:
pypdf finds the amount, the names and the code in its text; PDFium rasterises it and
zxing-cpp decodes its QR code to the redeem page with the code in the fragment only; and
nothing is drawn off the page, over the code or over the QR code."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pypdf
import pytest

from delivery import designs
from delivery.channels.email.i18n import format_money
from delivery.channels.printable import render_printable
from delivery.channels.printable.page import PAPER
from delivery.channels.printable.render import render_with_boxes
from ledger.marketplaces import MARKETPLACES

MARKETPLACE_CODES = tuple(MARKETPLACES)
AMOUNTS = {"US": 2500, "CA": 12345, "UK": 999999, "DE": 5000, "FR": 100000, "JP": 5000}


@pytest.mark.parametrize(
    ("design", "marketplace"), list(itertools.product(designs.shipped(), MARKETPLACE_CODES))
)
def test_every_design_renders_in_every_marketplace(
    pdf_tools: Any, new_card: Any, design: str, marketplace: str
) -> None:
    card = new_card(design=design, marketplace=marketplace, amount=AMOUNTS[marketplace])
    rendered = render_with_boxes(card)
    pdf = rendered.pdf

    reader = pypdf.PdfReader(io.BytesIO(rendered.pdf))
    assert len(reader.pages) == 1
    paper = "Letter" if marketplace in ("US", "CA") else "A4"
    width_mm, height_mm = PAPER[paper]
    box = reader.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72, 1), round(float(box.height) * 25.4 / 72, 1)) == (
        round(width_mm, 1),
        round(height_mm, 1),
    )

    text = pdf_tools.words(pdf_tools.pdf_text(pdf))
    amount = format_money(card.amount, marketplace, MARKETPLACES[marketplace].locale)
    assert pdf_tools.words(amount) in text
    assert "Robin Receiver" in text
    assert "Pat Buyer" in text
    assert card.grouped_code in text
    assert f"/{marketplace.lower()}/redeem" in text

    pdf_tools.check_qr(pdf, card)
    pdf_tools.check_layout(pdf, rendered.boxes, card)


@pytest.mark.parametrize(
    ("marketplace", "locale", "expected"),
    [
        ("US", None, "How to redeem your gift card"),
        ("UK", None, "Keep your code private"),
        ("DE", None, "So lösen Sie Ihre Geschenkkarte ein"),
        ("FR", None, "Comment utiliser votre carte cadeau"),
        ("JP", None, "ギフトカードのご利用方法"),
        ("JP", "en_US", "How to redeem your gift card"),
        ("CA", "fr_CA", "Comment utiliser votre carte cadeau"),
        ("DE", "ko_KR", "So lösen Sie Ihre Geschenkkarte ein"),
    ],
)
def test_the_page_speaks_the_cards_language(
    pdf_tools: Any, new_card: Any, marketplace: str, locale: str | None, expected: str
) -> None:
    pdf = render_printable(new_card(marketplace=marketplace, locale=locale))
    assert expected in pdf_tools.words(pdf_tools.pdf_text(pdf))


def test_japanese_renders_with_an_embedded_font(pdf_tools: Any, new_card: Any) -> None:
    message = "お誕生日おめでとうございます！素敵な一年になりますように。髙橋さんにもよろしく。"  # noqa: RUF001
    card = new_card(
        marketplace="JP", amount=5000, recipient_name="山田 太郎", sender_name="佐藤 花子", message=message
    )
    rendered = render_with_boxes(card)
    text = pdf_tools.words(pdf_tools.pdf_text(rendered.pdf))
    assert "山田 太郎" in text and "佐藤 花子" in text
    assert message in text.replace(" ", "")
    assert "￥5,000" in text
    fonts = _fonts(rendered.pdf)
    assert fonts, "no fonts"
    for name, embedded in fonts.items():
        assert embedded, f"{name} is not embedded"
    assert any("GiftqSansJP" in name for name in fonts)
    pdf_tools.check_qr(rendered.pdf, card)
    pdf_tools.check_layout(rendered.pdf, rendered.boxes, card)


def _fonts(pdf: bytes) -> dict[str, bool]:
    """Each font of the page and whether its program is embedded in the file."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    found = {}
    for reference in reader.pages[0]["/Resources"]["/Font"].values():
        font = reference.get_object()
        descendant = font["/DescendantFonts"][0].get_object()
        descriptor = descendant["/FontDescriptor"].get_object()
        found[str(font["/BaseFont"])] = "/FontFile2" in descriptor or "/FontFile3" in descriptor
    return found


def test_the_pdf_keeps_the_code_out_of_its_metadata(new_card: Any) -> None:
    card = new_card()
    reader = pypdf.PdfReader(io.BytesIO(render_printable(card)))
    metadata = " ".join(str(v) for v in (reader.metadata or {}).values())
    assert card.grouped_code not in metadata and card.code not in metadata


def test_an_unknown_design_is_refused_by_name(new_card: Any) -> None:
    from delivery.channels.printable import InvalidCard

    with pytest.raises(InvalidCard, match="unknown design 'confetti'"):
        render_printable(new_card(design="confetti"))


def test_the_qr_code_follows_the_public_base_url(
    pdf_tools: Any, new_card: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_PUBLIC_BASE_URL", "https://gifts.example.com/shop/")
    reset_settings()
    card = new_card(marketplace="FR", amount=1000)
    decoded = pdf_tools.decode_qr(pdf_tools.raster(render_printable(card)))
    assert decoded == [f"https://gifts.example.com/shop/fr/redeem#code={card.grouped_code}"]


def test_rendering_writes_no_file(
    pdf_tools: Any, new_card: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = set(tmp_path.rglob("*"))
    card = new_card()
    pdf = render_printable(card)
    assert card.grouped_code in pdf_tools.pdf_text(pdf)
    assert set(tmp_path.rglob("*")) == before


def test_no_value_on_the_way_shows_the_code(new_card: Any) -> None:
    from delivery.channels.printable.render import page_content

    card = new_card()
    for value in (card, page_content(card), render_with_boxes(card)):
        assert card.grouped_code not in repr(value)
        assert card.code not in repr(value)
