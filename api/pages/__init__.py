"""The recipient's pages: redeem a code into one's balance, check a card's value.

:func:`mount` adds them to the app, with the signed session cookie they use and the
static script and style sheet they load.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from api.pages import handover, signin, views
from giftq.settings import get_settings

log = logging.getLogger(__name__)


def mount(app: FastAPI) -> None:
    settings = get_settings()
    # A hand-over secret too short to be safe stops the start, here.
    if handover.secret() is None:
        log.warning("GIFTQ_HANDOVER_SECRET is not set: the redeem page accepts no hand-over link")
    app.include_router(views.router)
    app.mount("/static", StaticFiles(directory=settings.templates_dir / "pages" / "static"), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=signin.cookie_key(),
        session_cookie=signin.COOKIE,
        max_age=settings.page_session_seconds,
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )
