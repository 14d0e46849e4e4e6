"""ASGI middleware counting every HTTP request by route template, method and status, and timing it.

The route label is the matched route's template (``/jobs/{job_id}``, never the raw path, so that the
label set stays bounded); Starlette's router records the matched route in the scope, which this
middleware shares. A request no route matched is ``unmatched``. An exception that escapes the app
counts as the 500 that Starlette's outermost middleware answers with.

A plain ASGI middleware rather than ``BaseHTTPMiddleware``: it neither buffers nor wraps bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"

Observe = Callable[[str, str, int, float], None]
"""(route, method, status, seconds) -> records one answered request."""


def route_label(scope: Scope) -> str:
    """The template of the route that handled ``scope`` (a mount's prefix), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetrics:
    def __init__(self, app: ASGIApp, observe: Observe) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.observe(route_label(scope), scope["method"], status, time.perf_counter() - started)
