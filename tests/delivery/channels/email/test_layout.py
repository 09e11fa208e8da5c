"""What a person sees on a phone: the HTML emails laid out by a real browser.

Headless Chromium (Debian's ``chromium``, driven by Playwright) opens each HTML body at
375 px (a phone) and 800 px (a mail client's reading pane) and measures the layout: the
page is no wider than the screen, the claim code's box is on screen and its text on one
line, and a personal message made of one 500-letter word wraps inside its box.
Screenshots of every case are kept in the test's tmp dir (``<case>-<width>.png``).

Skipped when ``/usr/bin/chromium`` is missing, unless GIFTQ_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from delivery.channels.email import ConfirmationLine, EmailContext, OrderConfirmationEmail, render_email

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDTHS = (375, 800)
LONG_WORD = "Herzlichen" * 50  # 500 letters, no space: what stretched the page to ~4,000 px
LONG_NAME = "Maximiliane" * 9  # 99 letters: the longest name intake takes is 100


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (Debian: apt-get install chromium fonts-noto-core)"
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; GIFTQ_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# What the page measures: the document, every element's box, the code and message boxes.
# The code's box is the element whose text is exactly the code, however it is marked up;
# its lines are counted from the boxes its text is laid out in.
MEASURE = """(code) => {
  const vw = window.innerWidth;
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, height: r.height}; };
  const codeBox = Array.from(document.body.querySelectorAll('*')).find(el => el.textContent.trim() === code);
  let codeLines = null, codeContentHeight = null, codeLineHeight = null, codeText = null;
  if (codeBox) {
    const style = getComputedStyle(codeBox);
    codeLineHeight = parseFloat(style.lineHeight);
    codeContentHeight = codeBox.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const range = document.createRange();
    range.selectNodeContents(codeBox);
    const lineTops = Array.from(range.getClientRects()).filter(r => r.width > 0).map(r => Math.round(r.top));
    codeLines = new Set(lineTops).size;
    codeText = codeBox.innerText;
  }
  const outside = Array.from(document.body.querySelectorAll('*'))
    .filter(el => { const r = el.getBoundingClientRect();
                    return r.width > 0 && (r.left < -0.5 || r.right > vw + 0.5); })
    .map(el => el.tagName + (el.className ? '.' + el.className : ''));
  return {
    viewport: vw,
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    outside: outside,
    code: box(codeBox), codeLines, codeContentHeight, codeLineHeight, codeText,
    message: box(document.querySelector('blockquote')),
    link: box(document.querySelector('.download-link a')),
    linkText: (document.querySelector('.download-link a') || {}).textContent || null,
  };
}"""


def lay_out(browser: Any, html: str, width: int, screenshot: Path, code: str = "") -> dict[str, Any]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(html, wait_until="load")
        page.screenshot(path=str(screenshot), full_page=True)
        measured: dict[str, Any] = page.evaluate(MEASURE, code)
        return measured
    finally:
        page.close()


def within(box: dict[str, float], width: int) -> bool:
    return box["left"] >= -0.5 and box["right"] <= width + 0.5


def assert_fits(measured: dict[str, Any], width: int) -> None:
    assert measured["viewport"] == width
    assert measured["scrollWidth"] <= width, measured
    assert measured["bodyScrollWidth"] <= width, measured
    assert not measured["outside"], f"elements past the screen's edge: {measured['outside']}"


def receipt(long: bool) -> OrderConfirmationEmail:
    name = LONG_NAME if long else "Robin Receiver"
    return OrderConfirmationEmail(
        purchaser_name=LONG_NAME if long else "Pat Buyer",
        purchaser_email="pat@example.com",
        order_ref=("SHOP-" + "7" * 150) if long else "SHOP-1001",
        marketplace="DE",
        lines=(
            ConfirmationLine(name, "email", 2500, "DE", "••••-H2PW"),
            ConfirmationLine("Sam Friend", "physical", 5000, "JP"),
        ),
    )


def cases(samples: SimpleNamespace) -> dict[str, EmailContext]:
    return {
        "gift-normal": samples.gift("US"),
        "gift-long-message": samples.gift(
            "DE",
            message=f"Alles Gute!\n{LONG_WORD}\nDein Eve",
            sender_name=LONG_NAME,
            recipient_name=LONG_NAME,
        ),
        "receipt-normal": receipt(long=False),
        "receipt-long": receipt(long=True),
        # A printable card's email: its download link is one long token that must wrap.
        "printable-long": samples.printable("DE", recipient_name=LONG_NAME, purchaser_name=LONG_NAME),
    }


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "case", ["gift-normal", "gift-long-message", "receipt-normal", "receipt-long", "printable-long"]
)
def test_every_email_fits_the_screen(
    browser: Any, samples: SimpleNamespace, tmp_path: Path, case: str, width: int
) -> None:
    rendered = render_email(cases(samples)[case])
    measured = lay_out(browser, rendered.html, width, tmp_path / f"{case}-{width}.png", samples.CODE)
    assert_fits(measured, width)
    if case.startswith("printable"):
        # The link wraps inside its box, whole: the reader can still tap or copy it.
        assert measured["link"] is not None and within(measured["link"], width), measured
        assert measured["linkText"] == samples.DOWNLOAD_URL
    if not case.startswith("gift"):
        return
    # The code: on screen, readable, on one line, and the very code the reader copies.
    assert measured["code"] is not None and within(measured["code"], width), measured
    assert measured["codeLines"] == 1, measured
    assert measured["codeContentHeight"] == pytest.approx(measured["codeLineHeight"], abs=0.5), measured
    assert measured["codeText"].strip() == samples.CODE
    # The personal message wraps inside its box.
    assert measured["message"] is not None and within(measured["message"], width), measured


def test_on_a_narrower_screen_the_code_breaks_only_between_groups(
    browser: Any, samples: SimpleNamespace, tmp_path: Path
) -> None:
    rendered = render_email(samples.gift("US"))
    page = browser.new_page(viewport={"width": 240, "height": 900})
    try:
        page.set_content(rendered.html, wait_until="load")
        page.screenshot(path=str(tmp_path / "gift-240.png"), full_page=True)
        groups = page.evaluate(
            """() => Array.from(document.querySelectorAll('.claim-code span')).map(s => {
                 const r = s.getBoundingClientRect();
                 return {text: s.textContent, lines: s.getClientRects().length, top: Math.round(r.top)};
               })"""
        )
    finally:
        page.close()
    assert "".join(g["text"] for g in groups) == samples.CODE
    # Each group stays whole (one box, one line), though the code needs two lines here.
    assert all(g["lines"] == 1 for g in groups), groups
    assert len({g["top"] for g in groups}) > 1, groups
