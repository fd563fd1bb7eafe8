"""The gateway's HTTP surface (``[http] listen``): station pages, ``/metrics``, ``/healthz``.

Read-only, served by starlette on uvicorn inside the daemon's event loop
(:mod:`~gatewayd.http.server`); the Prometheus metrics are built in
:mod:`~gatewayd.http.metrics`. Nothing here imports the daemon: it hands in a
:class:`~gatewayd.http.server.GatewayView`.
"""
