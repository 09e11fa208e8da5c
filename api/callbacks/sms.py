"""The text-message provider's status callbacks: ``POST /sms/status``.

Twilio posts each message's fate (``queued`` ... ``delivered``, ``undelivered``,
``failed``) to the ``StatusCallback`` URL every text was sent with
(``GIFTQ_SMS_STATUS_CALLBACK_URL``, by default ``<GIFTQ_PUBLIC_BASE_URL>/sms/status``,
plus ``?ref=<delivery id>``). :func:`delivery.channels.sms.reports.apply_status_callback`
does the work: the signature is checked against that configured public URL (behind a
proxy the request's own URL differs from what Twilio signed), then the delivery moves
forward only. The answer is 204 once the report is committed, 403 for a bad signature,
404 for a message that is not ours, 422 for a malformed report; none of them is logged
with the form, which names a phone number.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from api.problems import openapi_responses
from delivery.channels.sms.errors import InvalidSignature, MalformedCallback
from delivery.channels.sms.reports import UnknownMessage, apply_status_callback
from delivery.channels.sms.signature import SIGNATURE_HEADER
from giftq.db import session_factory
from giftq.settings import get_settings

router = APIRouter(tags=["callbacks"])


def signed_url(query: str) -> str:
    """The URL Twilio requested, as it was configured (the one it signed)."""
    settings = get_settings()
    base = settings.sms_status_callback_url or f"{settings.public_base_url.rstrip('/')}/sms/status"
    return f"{base}?{query}" if query else base


def _apply(url: str, params: list[tuple[str, str]], signature: str | None) -> None:
    with session_factory().begin() as session:
        apply_status_callback(session, url, params, signature)


@router.post(
    "/sms/status",
    status_code=204,
    response_class=Response,
    responses=openapi_responses("forbidden", "not-found", "validation"),
    summary="A text message's status report from the provider (signed form post)",
)
async def sms_status(request: Request) -> Response:
    form = await request.form()
    params = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    url, signature = signed_url(request.url.query), request.headers.get(SIGNATURE_HEADER)
    try:
        # The database work runs in the thread pool: the event loop never waits on it.
        await run_in_threadpool(_apply, url, params, signature)
    except InvalidSignature:
        raise Problem("forbidden", "the X-Twilio-Signature does not verify") from None
    except UnknownMessage:
        raise Problem("not-found", "not a text message of ours") from None
    except MalformedCallback as exc:
        raise Problem("validation", str(exc)) from None
    return Response(status_code=204)
