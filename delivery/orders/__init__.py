"""Orders: the request schema, intake (the storefront's door), and processing (issue the
cards, create one delivery row per send)."""
