"""The node's HTTP JSON API (ASGI, served by hypercorn under trio) and its clients.

``app.create_app(node)`` builds the FastAPI application over a
:class:`~p2pcity.api.handle.NodeHandle`; the OpenAPI document is served at
``/openapi.json`` and Prometheus metrics at ``/metrics``. Errors are 4xx JSON
bodies ``{"error": "..."}``; bad input never yields a 5xx.
"""
