"""The ``/v1`` routes, one module per resource; each route is thin: parse, call, answer."""
