"""``giftq api`` (serve the HTTP API and the pages) and ``giftq api-keys`` (make, list, revoke).

Both are Typer apps, added to the ``giftq`` command by ``delivery.cli``:
``app.add_typer(api.cli.serve_app, name="api")`` and
``app.add_typer(api.cli.keys_app, name="api-keys")``.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from api.errors import ApiError
from api.keys import SCOPES, create_key, list_keys, revoke_key
from delivery.logs import logging_config
from giftq.db import session_factory
from giftq.settings import get_settings

serve_app = typer.Typer(help="Serve the HTTP API and the recipient's pages (uvicorn).")
keys_app = typer.Typer(help="API keys for storefronts: create, list, revoke.", no_args_is_help=True)
console = Console(highlight=False)


def uvicorn_log_config() -> dict[str, object]:
    """uvicorn's own loggers through giftq's structlog pipeline and code redaction; its access
    log off (``api.access`` logs each request without its query string)."""
    return logging_config()


@serve_app.callback(invoke_without_command=True)
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [GIFTQ_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [GIFTQ_API_PORT]")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [GIFTQ_API_WORKERS]")] = None,
) -> None:
    """Serve the API (``/v1``, docs at ``/docs``) and the pages (``/<marketplace>/redeem``)."""
    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.api_forwarded_allow_ips,
        access_log=False,
        log_config=uvicorn_log_config(),
        server_header=False,
    )


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="Who uses it, e.g. shop-us")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"Repeat for each: {', '.join(SCOPES)}")],
) -> None:
    """Make a key and print it once: only its digest is kept."""
    try:
        with session_factory().begin() as session:
            made = create_key(session, name=name, scopes=scope)
    except ApiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    logging.getLogger(__name__).info("API key %s made for %s", made.view.key_id, made.view.name)
    typer.echo(made.token)
    typer.echo(
        f"API key {made.view.key_id} ({made.view.name}; {' '.join(made.view.scopes)}). "
        "Store it now: it is shown only this once.",
        err=True,
    )


@keys_app.command(name="list")
def list_() -> None:
    """Every key: id, name, scopes, when made, whether revoked (never the key itself)."""
    with session_factory()() as session:
        keys = list_keys(session)
    table = Table(title=f"{len(keys)} API keys")
    for column in ("id", "name", "scopes", "created", "revoked"):
        table.add_column(column, no_wrap=column == "id")
    for key in keys:
        table.add_row(
            key.key_id,
            key.name,
            " ".join(key.scopes),
            f"{key.created_at:%F %T}",
            f"{key.revoked_at:%F %T}" if key.revoked_at else "",
        )
    console.print(table)


@keys_app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (giftq api-keys list)")]) -> None:
    """Stop a key working, at once."""
    try:
        with session_factory().begin() as session:
            view = revoke_key(session, key_id)
    except ApiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {view.key_id} ({view.name}) revoked")


__all__ = ["keys_app", "serve_app", "uvicorn_log_config"]
