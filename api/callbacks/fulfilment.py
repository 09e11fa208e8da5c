"""The print-and-ship vendor's reports: ``POST /v1/callbacks/fulfilment/reports``.

The body is ``{"reports": [{"item_ref", "event", "carrier", "tracking_number",
"tracking_url", "detail"}, ...]}``, signed with ``X-Giftq-Signature: sha256=<hex
HMAC-SHA256 of the body>`` under ``GIFTQ_FULFILMENT_CALLBACK_SECRET``.
:func:`delivery.channels.physical.reports.handle_callback` does the work, all or nothing:
``shipped`` activates the card and tells the purchaser the tracking, ``lost`` or
``damaged`` voids it and puts a replacement in the next batch. The answer is 200 with
what changed once it is committed (a repeated report changes nothing and says so), 401
for a bad signature, 422 naming every refused row, 403 when no secret is configured.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from api.problems import openapi_responses
from delivery.channels.physical.errors import BadSignature, FulfilmentConfigError, ReportRefused
from delivery.channels.physical.reports import SIGNATURE_HEADER, Applied, handle_callback
from giftq.db import session_factory

router = APIRouter(prefix="/v1/callbacks/fulfilment", tags=["callbacks"])


def _apply(body: bytes, signature: str | None) -> Applied:
    with session_factory().begin() as session:
        return handle_callback(session, body, signature)


@router.post(
    "/reports",
    responses=openapi_responses("unauthorized", "forbidden", "validation"),
    summary="The fulfilment vendor's reports: shipped, lost or damaged cards (signed JSON)",
)
async def fulfilment_reports(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        # The database work runs in the thread pool: the event loop never waits on it.
        applied = await run_in_threadpool(_apply, body, request.headers.get(SIGNATURE_HEADER))
    except BadSignature:
        raise Problem("unauthorized", f"the {SIGNATURE_HEADER} does not verify") from None
    except ReportRefused as refused:
        raise Problem(
            "validation",
            "report refused, nothing changed",
            extensions={
                "rows": [{"row": p.row, "item_ref": p.item_ref, "reason": p.reason} for p in refused.problems]
            },
        ) from None
    except FulfilmentConfigError as exc:
        # Not configured to take reports: a refusal of the caller, not a fault of ours.
        raise Problem("forbidden", str(exc)) from None
    return {
        "changed": list(applied.changed),
        "unchanged": list(applied.unchanged),
        "replacements": applied.replacements,
    }
