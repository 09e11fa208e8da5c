"""Addresses a channel can reach, checked once at every door (intake, ops).

Email addresses:

The rule, deliberate: the domain may be internationalised (``jörg@bücher.de``) and is
kept in its ASCII form (IDNA, ``jorg@xn--bcher-kva.de``), which every relay carries;
a mailbox name (before the ``@``) must be ASCII, because sending to a non-ASCII one
needs SMTPUTF8 at every hop and fails for good where a hop lacks it. Refusing such an
address when the order is placed costs the storefront one clear error; accepting it
would issue a card that can never arrive.

Phone numbers (text messages): E.164, and mobile (see :func:`deliverable_phone`).
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

MAX_LENGTH = 254
"""RFC 5321's limit on a forward path, and what relays enforce."""


class UndeliverableAddress(ValueError):
    """The address is malformed or cannot be carried by SMTP without SMTPUTF8."""


def deliverable_email(value: str) -> str:
    """The address in the form we send to (lower-case ASCII domain), or UndeliverableAddress."""
    if not isinstance(value, str):
        raise UndeliverableAddress("must be a string")
    try:
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        text = str(exc)
        if "before the @-sign" in text and "nternationalized" in text:
            raise UndeliverableAddress(
                "the mailbox name (before @) must be ASCII: non-ASCII mailbox names need "
                "SMTPUTF8, which mail servers do not all offer"
            ) from None
        raise UndeliverableAddress(f"not a valid email address: {text}") from None
    address = result.ascii_email or result.normalized
    if len(address) > MAX_LENGTH:
        raise UndeliverableAddress(f"longer than {MAX_LENGTH} characters")
    return address


_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
"""FIXED_LINE_OR_MOBILE: countries whose numbering does not tell the two apart (US, CA)."""


def deliverable_phone(value: str) -> str:
    """A mobile number in E.164 (``+447700900123``), or UndeliverableAddress saying why not.

    Accepts the number as people write it when it carries its country code (spaces,
    dashes, brackets); refuses numbers that are not valid, and numbers of a kind that
    cannot receive a text (fixed line, toll free, premium rate, shared cost, VoIP, ...).
    """
    if not isinstance(value, str):
        raise UndeliverableAddress("must be a string")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise UndeliverableAddress(
            "must be a phone number with its country code, like +14155550123"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise UndeliverableAddress("is not a valid phone number (E.164, like +14155550123)")
    kind = phonenumbers.number_type(number)
    if kind not in _MOBILE_TYPES:
        name = {v: k for k, v in vars(PhoneNumberType).items() if isinstance(v, int)}.get(kind, str(kind))
        raise UndeliverableAddress(
            f"is not a mobile number (it is {name.lower().replace('_', ' ')}); a text cannot reach it"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
