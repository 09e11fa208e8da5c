"""Everything ``delivery.programs`` raises derives from :class:`ProgramError`.

DeliveryError (delivery.errors)
└── ProgramError
    ├── ProgramNotFound     no program with that id
    ├── ProgramRefused      the action does not apply to the program as it is (ended)
    └── InvalidProgram      a program's fields failed validation; ``.errors`` names each
"""

from __future__ import annotations

from collections.abc import Sequence

from delivery.errors import DeliveryError, FieldError


class ProgramError(DeliveryError):
    """Base class of every birthday-program error."""


class ProgramNotFound(ProgramError, LookupError):
    """No program has this id."""


class ProgramRefused(ProgramError):
    """The action does not apply to the program in its current status; the message says why."""


class InvalidProgram(ProgramError, ValueError):
    """A program's fields are malformed; nothing was written."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid program: " + "; ".join(str(e) for e in self.errors))
