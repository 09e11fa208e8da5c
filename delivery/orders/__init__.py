"""Orders: the request schema, intake (the storefront's door) and its limits per
marketplace, held orders (awaiting payment, in a fraud review), and processing (issue the
cards, create one delivery row per send)."""
