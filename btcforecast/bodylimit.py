"""A request body size limit for any ASGI app, enforced before the body reaches a route (413).

Shared by the facade and the predictor, answered as the project's problem details
(:mod:`btcforecast.problems`; the predictor's carry KServe's ``error`` member too). A body
announced over the limit by Content-Length is refused without reading a byte of it, and a body
without Content-Length (chunked) is refused as soon as the bytes read pass the limit, so a client
can never make a server buffer an unbounded body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btcforecast.problems import problem


class BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once the streamed body passes the limit."""


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes by Content-Length, or while streaming when it is absent."""

    def __init__(self, app: ASGIApp, limit: int, protocol: bool = False) -> None:
        self.app = app
        self.limit = limit
        self.protocol = protocol

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    await self._reply(scope, receive, send, 400, "Content-Length is not a number")
                    return
                if too_big:
                    await self._reply(
                        scope, receive, send, 413, f"request body is over the {self.limit}-byte limit"
                    )
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reply(
                    scope, receive, send, 413, f"request body is over the {self.limit}-byte limit"
                )

    async def _reply(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        await problem(status, message, protocol=self.protocol)(scope, receive, send)
