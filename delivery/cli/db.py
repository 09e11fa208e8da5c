"""``giftq db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from giftq import migrate
from giftq.settings import get_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest); creates the database if need be."""
    url = get_settings().sqlalchemy_url
    migrate.upgrade(url, revision)
    typer.echo(f"database at revision {migrate.current(url)}")


@app.command()
def current() -> None:
    """Print the revision the database is at; exit 1 unless it is the code's head."""
    try:
        at = migrate.require_head(get_settings().sqlalchemy_url)
    except migrate.SchemaNotReady as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{at} (head)")
