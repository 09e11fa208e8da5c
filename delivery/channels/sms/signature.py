"""``X-Twilio-Signature``: how Twilio signs the requests it sends us (status callbacks).

The signature is ``base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))``:
the full URL Twilio requested (scheme, host, port if any, path and query), then every
POST parameter, sorted by name (code-point order, which is Unix ``sort`` order for ASCII
and UTF-8's byte order for the rest), each name followed by its value with no separator.
A name given several times contributes each distinct value, values sorted, as Twilio's
own ``RequestValidator`` computes it (the tests check this against it, repeated names and
non-ASCII text included).

:func:`verify_signature` accepts the URL with and without its port (``https://host:443/``
and ``https://host/``), because Twilio's signing has not always agreed with itself on
that, and compares in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"

Params = Mapping[str, str] | Mapping[str, Sequence[str]] | Iterable[tuple[str, str]]
"""Form parameters: a dict, a dict of value lists (``parse_qs``), or (name, value) pairs."""


def compute_signature(url: str, params: Params, auth_token: str) -> str:
    """The ``X-Twilio-Signature`` of a POST of ``params`` to ``url``."""
    payload = url + "".join(name + value for name, value in signed_pairs(params))
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify_signature(url: str, params: Params, signature: str | None, auth_token: str) -> bool:
    """True when ``signature`` is the one ``auth_token`` gives this request."""
    if not signature or not auth_token:
        return False
    pairs = signed_pairs(params)
    given = signature.strip().encode("ascii", "replace")
    matched = False
    for candidate in _url_variants(url):
        payload = candidate + "".join(name + value for name, value in pairs)
        mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
        expected = base64.b64encode(mac.digest())
        # Both variants are always checked: the time taken says nothing about which matched.
        matched |= hmac.compare_digest(expected, given)
    return matched


def signed_pairs(params: Params) -> list[tuple[str, str]]:
    """``(name, value)`` in signing order: names sorted, each name's distinct values sorted."""
    values: dict[str, set[str]] = {}
    if isinstance(params, Mapping):
        for name, value in params.items():
            if isinstance(value, str):
                values.setdefault(name, set()).add(value)
            else:
                values.setdefault(name, set()).update(value)
    else:
        for name, value in params:
            values.setdefault(name, set()).add(value)
    return [(name, value) for name in sorted(values) for value in sorted(values[name])]


def _url_variants(url: str) -> tuple[str, str]:
    """The URL without its port, and with the scheme's default port when it had none."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _split_port(hostport)
    prefix = userinfo + at
    without = urlunsplit(parts._replace(netloc=prefix + host))
    if port:
        with_port = url
    else:
        default = "443" if parts.scheme == "https" else "80"
        with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}"))
    return without, with_port


def _split_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # IPv6 literal: [::1]:8080
        host, _, rest = hostport.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else ""
    host, colon, port = hostport.rpartition(":")
    return (host, port) if colon and port.isdigit() else (hostport, "")
