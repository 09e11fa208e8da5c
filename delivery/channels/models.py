"""The tables that channels own, gathered so that migrations register them all.

Each channel with tables of its own adds its models module here.
"""

import delivery.channels.physical.models  # noqa: F401 - fulfilment batches, items, reports
