"""Routes that providers call back: one router per family, included by :mod:`api.app`.

Each module's router holds no route until its channel's handling is written: a callback
route that accepted reports and dropped them would tell a provider "received" for
nothing, so until then the path does not exist and the provider sees 404 (and retries
or alerts, as its contract says). A route added here shows up in the OpenAPI document,
and the drift test asks for ``api/openapi.json`` to be regenerated.
"""

from api.callbacks import fulfilment, printables, sms

ROUTERS = (sms.router, fulfilment.router, printables.router)

__all__ = ["ROUTERS"]
