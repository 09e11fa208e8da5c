"""Orders, scheduling and delivery of gift cards over email, SMS, printable PDF and post.

``from delivery import place_order`` is the Python door of intake (see ``delivery.orders.intake``).
"""

from delivery.orders.intake import PlacedOrder, place_order

__all__ = ["PlacedOrder", "place_order"]
