"""SMS provider status callbacks (delivered, undelivered, failed) for sent text messages.

To fill: ``POST /v1/callbacks/sms/status`` verifying the provider's signature over the
exact body (e.g. Twilio's ``X-Twilio-Signature``, HMAC-SHA1 of the URL and sorted form
fields with the auth token), finding the delivery by its ``provider_ref`` (the message
SID) and moving it through ``delivery.lifecycle``. Answer 2xx only once the report is
committed; a refused signature is 403, an unknown message 2xx (nothing to retry).
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/callbacks/sms", tags=["callbacks"])
