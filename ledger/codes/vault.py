"""Claim codes at rest: a keyed hash for lookup and an authenticated encryption.

- ``lookup_hash``: HMAC-SHA256 under the pepper (``GIFTQ_CODE_PEPPER``). Without the
  pepper, a stolen table cannot be searched for a guessed code.
- ``seal`` / ``open``: AES-256-GCM under the active key of ``GIFTQ_CODE_KEYS``,
  with the key id stored beside it so that keys can rotate (old keys keep
  decrypting; the first key encrypts). The lookup hash is the associated data,
  binding a ciphertext to its own card row.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from giftq.settings import Settings, get_settings
from ledger.errors import LedgerError

_NONCE = 12


class UnknownCodeKey(LedgerError):
    """A stored code was sealed with a key id missing from GIFTQ_CODE_KEYS."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes


class CodeVault:
    def __init__(self, pepper: bytes, keyring: dict[str, bytes]) -> None:
        if not keyring:
            raise ValueError("the keyring needs at least one key")
        self._pepper = pepper
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.items()}
        self._active = next(iter(keyring))

    def __repr__(self) -> str:
        return f"CodeVault(active_key={self._active!r}, keys={len(self._ciphers)})"

    def lookup_hash(self, normalized: str) -> bytes:
        return hmac.digest(self._pepper, normalized.encode("ascii"), "sha256")

    def lookup_hashes(self, normalized: list[str]) -> list[bytes]:
        """:meth:`lookup_hash` for a batch."""
        pepper = self._pepper
        return [hmac.digest(pepper, code.encode("ascii"), "sha256") for code in normalized]

    def seal(self, normalized: str, lookup_hash: bytes) -> Sealed:
        nonce = os.urandom(_NONCE)
        blob = self._ciphers[self._active].encrypt(nonce, normalized.encode("ascii"), lookup_hash)
        return Sealed(self._active, nonce + blob)

    def seal_many(self, normalized: list[str], lookup_hashes: list[bytes]) -> tuple[str, list[bytes]]:
        """:meth:`seal` for a batch: the key id, and each code's blob (nonces from one CSPRNG read)."""
        encrypt = self._ciphers[self._active].encrypt
        nonces = os.urandom(_NONCE * len(normalized))
        blobs = []
        for i, (code, lookup_hash) in enumerate(zip(normalized, lookup_hashes, strict=True)):
            nonce = nonces[i * _NONCE : (i + 1) * _NONCE]
            blobs.append(nonce + encrypt(nonce, code.encode("ascii"), lookup_hash))
        return self._active, blobs

    def open(self, sealed: Sealed, lookup_hash: bytes) -> str:
        try:
            cipher = self._ciphers[sealed.key_id]
        except KeyError:
            raise UnknownCodeKey(f"code key {sealed.key_id!r} is not configured") from None
        nonce, blob = sealed.blob[:_NONCE], sealed.blob[_NONCE:]
        return cipher.decrypt(nonce, blob, lookup_hash).decode("ascii")

    def fingerprint(self, data: bytes) -> str:
        """A keyed digest of a request, for idempotency records (requests may hold codes)."""
        return hmac.new(self._pepper, b"request\x00" + data, hashlib.sha256).hexdigest()


_vault: tuple[Settings, CodeVault] | None = None


def get_vault() -> CodeVault:
    """The process's vault, rebuilt when the settings object changes."""
    global _vault  # noqa: PLW0603 - a per-process cache keyed by the settings identity
    settings = get_settings()
    # Keep the settings object itself, not its id(): once reset_settings() frees the old
    # object, a new one can be allocated at the same address and an id() check would
    # keep serving the old pepper and keys.
    if _vault is None or _vault[0] is not settings:
        _vault = (settings, CodeVault(settings.pepper(), settings.code_keyring()))
    return _vault[1]
