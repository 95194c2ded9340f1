"""A lean WebSocket client for the load generator: `websockets`' sans-I/O protocol on a bare
asyncio transport.

The load generator holds 1,000 sockets on one core shared with the servers. `websockets`' asyncio
client wakes a task per received frame; this one hands each frame to a callback inside
`data_received`, which roughly halves the client's CPU per delivery and leaves more of the box to
the systems under test. Every system is measured with this same client. It speaks the same
protocol, including permessage-deflate negotiated exactly as `websockets.connect` does.
`SocketIOSocket` adds the little of Engine.IO v4 and Socket.IO v5 the socket.io peers need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Self, cast

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

OnText = Callable[[str], None]
# While `expect` waits, a frame starting like this fails the wait (the server refused something).
ERROR_FRAME = '{"type":"error"'
# Engine.IO v4 packets: the server's handshake, its heartbeat ping and the client's pong.
EIO_OPEN, EIO_PING, EIO_PONG = "0{", "2", "3"
# Socket.IO v5 packets in the default namespace: connect (and its reply) and a refused connect.
SIO_CONNECT, SIO_CONNECT_ERROR = "40", "44"
# How long a closing handshake may take before the connection is just dropped.
CLOSE_TIMEOUT = 5.0


class LeanSocket(asyncio.Protocol):
    """One client connection; text frames go to `on_text` once the caller stops waiting."""

    error_prefix = ERROR_FRAME

    def __init__(self, url: str, *, compression: bool, max_size: int) -> None:
        extensions = enable_client_permessage_deflate(None) if compression else None
        self._protocol = ClientProtocol(parse_uri(url), extensions=extensions, max_size=max_size)
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._waiting: tuple[str, asyncio.Future[str]] | None = None
        self._fragments: list[bytes] = []
        self.on_text: OnText | None = None

    @classmethod
    async def open(cls, url: str, *, compression: bool, max_size: int = 2**22) -> Self:
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        _, socket = await loop.create_connection(
            lambda: cls(url, compression=compression, max_size=max_size), uri.host, uri.port
        )
        await socket._opened
        return socket

    @property
    def is_open(self) -> bool:
        return self._protocol.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        return self._protocol.close_code

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)
        self._protocol.send_request(self._protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._protocol.receive_data(data)
        for event in self._protocol.events_received():
            if isinstance(event, Response):
                self._on_response()
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush()  # Pongs and close replies the protocol queued.

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        lost = ConnectionError(f"connection lost (close code {self.close_code})")
        if not self._opened.done():
            self._opened.set_exception(lost)
        if not self.closed.done():
            self.closed.set_result(None)
        if self._waiting is not None and not self._waiting[1].done():
            self._waiting[1].set_exception(lost)

    # --- frames -------------------------------------------------------------------------------

    def _on_response(self) -> None:
        if self._protocol.handshake_exc is not None:
            self._opened.set_exception(self._protocol.handshake_exc)
        else:
            self._opened.set_result(None)

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.CONT):
            return  # Pings are answered by the protocol; closes end in connection_lost.
        self._fragments.append(frame.data)
        if not frame.fin:
            return
        text = b"".join(self._fragments).decode()
        self._fragments.clear()
        self._on_text(text)

    def _on_text(self, text: str) -> None:
        if self._waiting is not None:
            prefix, future = self._waiting
            if future.done():
                self._waiting = None
            elif text.startswith(prefix):
                self._waiting = None
                future.set_result(text)
            elif text.startswith(self.error_prefix):
                self._waiting = None
                future.set_exception(RuntimeError(f"refused: {text[:300]}"))
            return
        if self.on_text is not None:
            self.on_text(text)

    def _flush(self) -> None:
        if self._transport is None:
            return
        for chunk in self._protocol.data_to_send():
            if chunk:
                self._transport.write(chunk)
            elif self._transport.can_write_eof() and not self._transport.is_closing():
                self._transport.write_eof()  # The protocol's end-of-stream marker.

    # --- API ----------------------------------------------------------------------------------

    def send(self, text: str) -> None:
        self._protocol.send_text(text.encode())
        self._flush()

    async def expect(self, prefix: str) -> str:
        """The next text frame starting with `prefix`; others are dropped, an error frame raises."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting = (prefix, future)
        return await future

    async def close(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._protocol.send_close(1000)
        self._flush()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self._transport.abort()


class SocketIOSocket(LeanSocket):
    """A Socket.IO client over Engine.IO v4's websocket transport alone, in the default
    namespace: it answers the server's heartbeat pings itself, even while nobody reads, so a
    socket that waits for the others to connect is not dropped for a missed pong."""

    error_prefix = SIO_CONNECT_ERROR

    def __init__(self, url: str, *, compression: bool, max_size: int) -> None:
        super().__init__(url, compression=compression, max_size=max_size)
        self._handshake: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, url: str, *, compression: bool) -> Self:
        """Open `url` (`.../socket.io/?EIO=4&transport=websocket`) and connect to "/"."""
        socket = await cls.open(url, compression=compression)
        # The Engine.IO handshake can arrive with the HTTP response, before `open` returns.
        await socket._handshake
        socket.send(SIO_CONNECT)
        await socket.expect(SIO_CONNECT)
        return socket

    def _on_text(self, text: str) -> None:
        if text == EIO_PING:
            self.send(EIO_PONG)
        elif text.startswith(EIO_OPEN) and not self._handshake.done():
            self._handshake.set_result(text)
        else:
            super()._on_text(text)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError("closed before the Engine.IO handshake"))
        super().connection_lost(exc)
