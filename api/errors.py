"""Everything ``api`` raises derives from :class:`ApiError`.

    ApiError
    ├── Problem                 an HTTP answer as RFC 9457 problem details (see api.problems)
    ├── InvalidKeyRequest       an API key cannot be made or revoked as asked (api.keys)
    └── HandoverInvalid         a redeem-page hand-over link is malformed, forged or expired

Ledger and delivery errors are not wrapped: :func:`api.problems.from_exception` maps
them to problems where they reach the HTTP edge. Messages never hold a claim code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ApiError(Exception):
    """Base class of every error of the HTTP API package."""


class Problem(ApiError):
    """An answer with a problem type (``api.problems.TYPES``), a detail and extension members."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.extensions = dict(extensions or {})
        self.headers = dict(headers or {})


class HandoverInvalid(ApiError, ValueError):
    """A hand-over link to the redeem page is malformed, forged or expired."""


def field_errors(errors: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    """RFC 9457 style entries from ``(where, name, message)``: where is body, query, path or header."""
    entries = []
    for where, name, message in errors:
        if where == "body":
            pointer = "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in name.split(".") if p)
            entries.append({"pointer": pointer.rstrip("/") or "#", "detail": message})
        elif where == "header":
            entries.append({"header": name, "detail": message})
        else:
            entries.append({"parameter": name, "detail": message})
    return entries
