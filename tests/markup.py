"""Text that tries to be markup, for the escaping properties of every channel and page:
HTML, template syntax, entities, quotes, CDATA and comments, mixed with plain words."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import strategies as st

FRAGMENTS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "</p></div>",
    "<a href='javascript:alert(1)'>x</a>",
    "&amp;",
    "&lt;b&gt;",
    "&#60;",
    '"',
    "'",
    "{{ 7*7 }}",
    "{% raw %}",
    "${7*7}",
    "<!--",
    "]]>",
    "<![CDATA[x]]>",
    "**bold**",
    "[link](http://x)",
]
WORDS = ["Robin", "Happy", "birthday", "R&D", "Tom", "Jerry", "<3", "5 > 3"]
MARKUP = st.lists(st.sampled_from(FRAGMENTS + WORDS), min_size=1, max_size=6).map(" ".join)
"""Markup-like text on one line, short enough to stay unshortened and unwrapped."""

_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][\w-]*)")


def tags(html: str) -> Counter[str]:
    """The tags of a document by name (``p``, ``/p``): what injected markup would add to."""
    return Counter(close + name.lower() for close, name in _TAG.findall(html))


def words(text: str) -> str:
    return " ".join(text.split())
