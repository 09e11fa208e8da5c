"""Alembic migrations for giftq (run with ``giftq db upgrade``)."""
