"""Downloads of print-at-home cards (the PDF a purchaser or recipient prints).

To fill: ``GET /v1/printables/{token}`` where ``token`` is a signed, expiring reference to
a delivery (never the claim code, which must stay out of URLs), answering the PDF with
``Cache-Control: no-store``; an expired or unknown token is 404.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/printables", tags=["callbacks"])
