"""The HTTP API's tables: API keys (stored hashed) and the answers kept per idempotency key.

Claim codes never reach these tables: keys are kept as SHA-256 digests, requests as a
keyed digest, and the answers kept are the API's own responses, which carry ids,
amounts and masked codes only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, UTCDateTime, bigid_pk, utc_datetime


class ApiKey(Base):
    """A storefront's key: ``gq_<key_id>_<secret>``; only the secret's SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[bigid_pk]
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    """The public part, printed in the token: how a request's key is found."""
    secret_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(100))
    """Space-separated, from :data:`api.keys.SCOPES`."""
    created_at: Mapped[utc_datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class IdempotentResponse(Base):
    """The first answer to a request sent with an ``Idempotency-Key``, per API key.

    Written in the same transaction as the work it answers for, so a request either left
    its effect and this row, or neither. Only successful answers are kept: a refused
    request may be sent again with the same key once its cause is fixed.
    """

    __tablename__ = "api_idempotent_responses"

    api_key_id: Mapped[int] = mapped_column(BigId, ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    """A keyed digest of method, path and body (a body may hold a claim code)."""
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[utc_datetime]
