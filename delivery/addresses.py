"""Email addresses that a relay can carry, checked once at every door (intake, ops).

The rule, deliberate: the domain may be internationalised (``jörg@bücher.de``) and is
kept in its ASCII form (IDNA, ``jorg@xn--bcher-kva.de``), which every relay carries;
a mailbox name (before the ``@``) must be ASCII, because sending to a non-ASCII one
needs SMTPUTF8 at every hop and fails for good where a hop lacks it. Refusing such an
address when the order is placed costs the storefront one clear error; accepting it
would issue a card that can never arrive.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

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
