"""Fulfilment reports from the print-and-ship vendor: a physical card shipped (activate it
with ``ledger.activate_card``), or could not be delivered.

To fill: ``POST /v1/callbacks/fulfilment/reports``, authenticated as the vendor's
contract says (a shared-secret HMAC over the body, or a dedicated API key scope), one
report per line id, idempotent by the vendor's report id. Answer 2xx only after commit.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/callbacks/fulfilment", tags=["callbacks"])
