"""What ops do: look orders and cards up (masked), and act on them (replay, resend,
reissue, cancel, unsuppress). ``delivery.ops`` is the one place ops code imports from."""

from delivery.ops.actions import *  # noqa: F403 - the package is the public face of its modules
from delivery.ops.actions import __all__ as __all__
