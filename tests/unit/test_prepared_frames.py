"""Frames encoded once and written as they are: the encoding, the uvicorn protocol that offers
the write, and a socket's order when some frames are written at once and others queue."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from backend_services.core.errors import CloseCode
from backend_services.core.schemas import User
from backend_services.core.security import TokenClaims
from backend_services.core.sessions import Session
from backend_services.message_service.connection import Close, Connection
from backend_services.message_service.prepared_frames import (
    Prepared,
    PreparedFramesProtocol,
    WritePrepared,
    encode_text_frame,
    prepared_writer,
)

App = Callable[[Any, Any, Any], Awaitable[None]]


@pytest.mark.parametrize(
    "text",
    ["", "a", "a" * 125, "a" * 126, "é" * 63, "a" * 65_535, "a" * 65_536, "é" * 35_000],
)
def test_a_frame_is_encoded_as_websockets_encodes_a_servers_text_frame(text: str) -> None:
    expected = WsFrame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert encode_text_frame(text) == expected
    prepared = Prepared(text)
    assert prepared.wire is prepared.wire  # Encoded once, however many sockets write it.
    assert prepared.wire == expected


@contextlib.asynccontextmanager
async def _serving(app: App, *, compression: bool = False) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # A client may connect at once: the server accepts once it has started.
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        ws=PreparedFramesProtocol,
        ws_per_message_deflate=compression,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def test_the_server_offers_the_write_and_it_keeps_its_place_among_sends() -> None:
    writes: list[WritePrepared | None] = []
    after_close: list[bool] = []
    closed = asyncio.Event()
    big = "x" * 70_000

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        write = prepared_writer(scope)
        writes.append(write)
        assert write is not None
        assert write(encode_text_frame("one"))
        await send({"type": "websocket.send", "text": "two"})
        assert write(Prepared(big).wire)
        assert write(encode_text_frame("four"))
        assert (await receive())["type"] == "websocket.disconnect"
        after_close.append(write(encode_text_frame("too late")))
        closed.set()

    async with _serving(app) as url, connect(url, compression=None) as client:
        got = [await client.recv() for _ in range(4)]
    assert got == ["one", "two", big, "four"]
    async with asyncio.timeout(5):
        await closed.wait()
    assert after_close == [False]


async def test_a_socket_over_its_high_water_mark_is_not_written_to() -> None:
    answers: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        write = prepared_writer(scope)
        assert write is not None
        protocol = write.__self__  # type: ignore[attr-defined]
        protocol.pause_writing()  # As the transport does when its buffer is over the mark.
        answers.append(write(encode_text_frame("held")))
        protocol.resume_writing()
        answers.append(write(encode_text_frame("now")))
        await receive()

    async with _serving(app) as url, connect(url, compression=None) as client:
        assert await client.recv() == "now"
    assert answers == [False, True]


async def test_a_compressed_socket_is_not_offered_the_write() -> None:
    offered: list[WritePrepared | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        offered.append(prepared_writer(scope))
        await send({"type": "websocket.send", "text": "through send"})
        await receive()

    async with (
        _serving(app, compression=True) as url,
        connect(url, compression="deflate") as client,
    ):
        assert await client.recv() == "through send"
    assert offered == [None]


def test_no_server_extension_means_no_write() -> None:
    assert prepared_writer({"type": "websocket", "extensions": {}}) is None
    assert prepared_writer({"type": "websocket"}) is None


class _Socket:
    """A prepared writer that can be told to refuse, as a paused transport does."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.accepting = True

    def write(self, frame: bytes) -> bool:
        if self.accepting:
            self.written.append(frame)
        return self.accepting

    def texts(self) -> list[str]:
        return [frame[2:].decode() for frame in self.written]


def _connection(sock: _Socket, queue_size: int = 16) -> Connection:
    user = User(id="u1", username="alice", display_name="Alice")
    claims = TokenClaims(user_id="u1", token_id="t1", expires_at=datetime.now(UTC), session_id="s1")
    return Connection(
        Session(user, claims, live_until=datetime.now(UTC)),
        queue_size=queue_size,
        write_prepared=sock.write,
    )


def test_frames_are_written_at_once_and_queue_only_behind_what_could_not_be() -> None:
    sock = _Socket()
    conn = _connection(sock)
    conn.push("a")
    conn.push(Prepared("b"))
    assert sock.texts() == ["a", "b"]
    assert len(conn.outbox) == 0
    sock.accepting = False  # The client reads slowly: its buffer is full.
    conn.push("c")
    sock.accepting = True
    conn.push("d")  # The socket could take it, but "c" is ahead of it.
    assert sock.texts() == ["a", "b"]
    taken = conn.outbox.take_nowait()
    assert taken == ["c", "d"]
    conn.push("e")  # The writer holds "c" and "d" and has not sent them yet.
    assert sock.texts() == ["a", "b"]
    for frame in taken:
        assert not isinstance(frame, Close)
        assert conn.write_now(frame)
    conn.outbox.sent()
    [e] = conn.outbox.take_nowait()
    assert e == "e"
    assert conn.write_now(e)
    conn.outbox.sent()
    conn.push("f")
    assert sock.texts() == ["a", "b", "c", "d", "e", "f"]


def test_a_socket_that_cannot_take_frames_is_still_closed_when_too_far_behind() -> None:
    sock = _Socket()
    sock.accepting = False
    conn = _connection(sock, queue_size=16)
    for n in range(20):
        conn.push(f"f{n}")
    assert conn.outbox.take_nowait() == [
        Close(CloseCode.SLOW_CONSUMER, "too far behind; reconnect and resume")
    ]
    sock.accepting = True
    conn.push("after")
    assert sock.written == []
