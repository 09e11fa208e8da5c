"""Claim codes: the bearer secret printed on a gift card.

:class:`ClaimCode` holds one in memory. Its ``str``, ``repr`` and format show only
the last four characters; :meth:`ClaimCode.reveal` gives the full display form,
for the one place that needs it (rendering the gift to its recipient).
"""

from __future__ import annotations

import hmac
from typing import NoReturn

from ledger.codes import text as code_text
from ledger.codes.vault import CodeVault, Sealed, get_vault


class ClaimCode:
    __slots__ = ("_normalized",)

    def __init__(self, normalized: str) -> None:
        self._normalized = normalized

    @classmethod
    def generate(cls) -> ClaimCode:
        return cls(code_text.generate())

    @classmethod
    def parse(cls, typed: str) -> ClaimCode:
        """Normalise what a person typed; raises ``CodeMistyped`` if it cannot be a code."""
        return cls(code_text.normalize(typed))

    @property
    def normalized(self) -> str:
        return self._normalized

    @property
    def last4(self) -> str:
        return self._normalized[-4:]

    @property
    def masked(self) -> str:
        return code_text.mask(self.last4)

    def reveal(self) -> str:
        """The full code, grouped for reading. Only for rendering it to its recipient."""
        return code_text.display(self._normalized)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"ClaimCode({self.masked})"

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClaimCode):
            return NotImplemented
        return hmac.compare_digest(self._normalized, other._normalized)

    def __hash__(self) -> int:
        return hash(self._normalized)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a ClaimCode is not serialisable: pass card ids, not codes")


__all__ = ["ClaimCode", "CodeVault", "Sealed", "code_text", "get_vault"]
