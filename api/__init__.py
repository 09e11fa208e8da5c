"""The HTTP API (FastAPI) and the recipient's pages: the door for storefronts that are not
written in Python, and the page every gift email links to.

Depends on ``delivery`` and ``ledger``, never the reverse. ``api.app.create_app`` builds
the application; ``api.cli`` holds the ``giftq api`` and ``giftq api-keys`` commands.
"""
