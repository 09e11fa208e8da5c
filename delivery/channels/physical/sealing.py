"""Claim codes sealed for the vendor: the only form in which a physical card's code leaves.

Each code is sealed on its own with a libsodium **sealed box** (PyNaCl
:class:`nacl.public.SealedBox`) to the vendor's X25519 public key
(``GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY``, base64 of 32 bytes): a fresh ephemeral key pair
per code, X25519 key agreement, XSalsa20-Poly1305. Only the holder of the vendor's private
key can open it; giftq itself cannot, so a batch file copied from the drop folder, a
backup or a re-post tells nothing. The sealed form is base64 (standard alphabet, padded)
of the 48 + n bytes libsodium produces, n being the UTF-8 length of the code as printed
(``XXXX-XXXX-XXXX-XXXXX``, 20 bytes): 92 characters.

How the vendor opens one (any libsodium binding; ``crypto_box_seal_open`` in C)::

    import base64
    from nacl.public import PrivateKey, SealedBox

    box = SealedBox(PrivateKey(base64.b64decode(VENDOR_PRIVATE_KEY_B64)))
    code = box.decrypt(base64.b64decode(row["code_sealed"])).decode("ascii")

and how it makes its key pair (it sends us the public half only)::

    key = PrivateKey.generate()
    base64.b64encode(bytes(key)), base64.b64encode(bytes(key.public_key))

Sealed boxes are not signed: they keep the code secret, they do not prove who wrote the
manifest. The drop folder (or the HTTPS endpoint) must only be writable by giftq.
"""

from __future__ import annotations

import base64
import binascii

from nacl.public import PublicKey, SealedBox

from delivery.channels.physical.errors import FulfilmentConfigError
from giftq.settings import get_settings
from ledger import ClaimCode


class Sealer:
    """Seals codes to one vendor public key."""

    __slots__ = ("_box", "key_id")

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise FulfilmentConfigError("the vendor's public key must be 32 bytes (X25519)")
        self._box = SealedBox(PublicKey(public_key))
        self.key_id = binascii.hexlify(public_key[:4]).decode()
        """The first four bytes of the key, hex: names the key in the manifest, reveals nothing."""

    def seal(self, code: ClaimCode) -> str:
        return base64.b64encode(self._box.encrypt(code.reveal().encode("ascii"))).decode("ascii")


def from_settings() -> Sealer:
    value = get_settings().fulfilment_vendor_public_key
    if not value:
        raise FulfilmentConfigError(
            "GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY is not set: physical cards' codes are sealed to it"
        )
    return Sealer(base64.b64decode(value, validate=True))
