"""Alembic environment: online migrations against the configured URL."""

from __future__ import annotations

from alembic import context

from giftq.db import make_engine
from migrations.metadata import include_object, target_metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url) if url.startswith("sqlite") else make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                include_object=include_object,
                render_as_batch=connection.dialect.name == "sqlite",
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("giftq migrations run online only: giftq db upgrade")
run_migrations_online()
