"""Deadlines for clients that send slowly: a request's head, then its body.

uvicorn times out a connection only while it is idle between requests (`timeout_keep_alive`).
A client that opens a connection and sends nothing, or trickles a request's headers a byte at a
time, or announces a body and never finishes it, holds a connection and a slot of the process
for as long as it likes, and a few hundred such clients hold them all (slowloris).

- `timed_http(seconds)` is uvicorn's httptools protocol with a deadline on each request's head:
  from the connection's start (or the request's first byte, on a kept-alive connection) to the
  end of its headers. A head that takes longer is answered 408 and the connection closed. A
  WebSocket handshake is a request head like any other.
- `BodyDeadline` gives a request's body as long, counted from the request's start; reading past
  that raises an HTTP 408 the routes' error handlers answer `{code: request_timeout}`, and the
  connection closes after it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend_services.core.errors import ErrorCode

TIMEOUT_MESSAGE = "The request was not sent in time; send it again."
_TIMEOUT_BODY = json.dumps({"code": ErrorCode.REQUEST_TIMEOUT.value, "message": TIMEOUT_MESSAGE})
_TIMEOUT_RESPONSE = (
    "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n{_TIMEOUT_BODY}"
).encode()


class _TimedHttp(HttpToolsProtocol):
    head_seconds = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # A kept-alive connection's next request.
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


def timed_http(head_seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's `http` protocol class, with `head_seconds` for each request's head."""
    return type("TimedHttp", (_TimedHttp,), {"head_seconds": head_seconds})


class BodyDeadline:
    """ASGI middleware: an HTTP request's body must arrive within `seconds` of its start."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done = False
        late = False

        async def timed_receive() -> Message:
            nonlocal body_done, late
            if body_done:  # Waiting for a disconnect, say: not the client's to hurry.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message: dict[str, Any] = dict(await receive())
            except TimeoutError:
                late = True
                raise HTTPException(408, TIMEOUT_MESSAGE) from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def closing_send(message: Message) -> None:
            # What is left of a late body must not be read as the next request.
            if late and message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, timed_receive, closing_send)
