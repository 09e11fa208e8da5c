"""Downloads of print-at-home cards: ``GET /printables/{token}``.

The token is the signed, expiring, use-counted reference that
:func:`delivery.channels.printable.make_link` puts in the purchaser's email (never the
claim code). One download is counted and the PDF rendered in the same transaction, so a
render that fails spends no use. The PDF holds the code: the answer says
``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``, and the access log
writes this path without its token (see :mod:`api.access_log`). A bad, unknown, expired
or used-up link is 404 with the reason; nothing tells a guesser whether a delivery exists.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from api.problems import openapi_responses
from delivery.channels.printable.errors import LinkRefused
from delivery.channels.printable.links import redeem_link
from delivery.channels.printable.sender import Download, download
from giftq.db import session_factory, utcnow

router = APIRouter(tags=["printables"])

PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _fetch(token: str) -> Download:
    with session_factory().begin() as session:
        delivery_id = redeem_link(session, token, utcnow())
        return download(session, delivery_id)


@router.get(
    "/printables/{token}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **openapi_responses("not-found")},
    summary="Download a print-at-home card (a link from the purchaser's email)",
)
async def printable(token: str) -> Response:
    try:
        card = await run_in_threadpool(_fetch, token)
    except LinkRefused as refused:
        raise Problem("not-found", f"this download link does not work: {refused}") from None
    except LookupError:
        raise Problem("not-found", "this card cannot be printed any more") from None
    return Response(
        card.pdf,
        media_type="application/pdf",
        headers={**PRIVATE, "Content-Disposition": f'attachment; filename="{card.filename}"'},
    )
