"""The tables that channels own, gathered so that migrations register them all.

Each channel with tables of its own adds its models module here.
"""

import delivery.channels.physical.models
import delivery.channels.printable.models  # noqa: F401 - printable_links
