"""A TCP proxy that injects faults between a service and what it depends on (MongoDB, Redis).

It runs on 127.0.0.1 in a thread of its own (so it keeps forwarding while a test blocks, e.g.
while `running_stack` waits for the services to start) and forwards each connection to the
upstream. Faults apply to one direction or both: "up" is client to upstream (requests), "down"
upstream to client (replies).

- `blackhole(direction)`: bytes are read and thrown away, so the other side hears nothing and
  clients wait until their own timeouts fire. Both directions: a stalled network, where new
  connections are accepted but never reach the upstream either.
- `delay(seconds, direction)` holds every chunk that long.
- `reset()` closes every connection at once.
- `drop_replies(match, count)`, for a proxy that speaks MongoDB's wire protocol
  (`wire="mongo"`): requests go through, but the replies to the next `count` commands that
  `match` are thrown away. The database did the work; the client never hears that it did.
- `count(match)`, for a `wire="mongo"` proxy: how many commands that `match` went through.
- `heal()` goes back to forwarding (connections blackholed meanwhile stay dead, as after a real
  partition; clients open new ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import bson

CHUNK = 64 * 1024
Direction = Literal["up", "down", "both"]
Wire = Literal["raw", "mongo"]
# MongoDB's wire protocol: every message starts with its length, request id, the id of the
# request it answers, and its op code; OP_MSG carries flag bits, then sections (kind 0: a body).
_HEADER = struct.Struct("<iiii")
_OP_MSG = 2013


def _sides(direction: Direction) -> set[str]:
    return {"up", "down"} if direction == "both" else {direction}


def _command(message: bytes) -> dict[str, Any] | None:
    """The body of an OP_MSG request (its command document), or None for anything else."""
    _, _, _, op_code = _HEADER.unpack_from(message)
    at = _HEADER.size + 4  # flag bits
    if op_code != _OP_MSG or len(message) <= at or message[at] != 0:
        return None
    (size,) = struct.unpack_from("<i", message, at + 1)
    return bson.decode(message[at + 1 : at + 1 + size])


def inserts_into(collection: str) -> Callable[[dict[str, Any]], bool]:
    """A `drop_replies` match: an insert into `collection`."""
    return lambda command: command.get("insert") == collection


def finds_in(collection: str) -> Callable[[dict[str, Any]], bool]:
    """A `drop_replies` match: a query of `collection`."""
    return lambda command: command.get("find") == collection


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    wire: Wire = "raw"
    port: int = 0
    blackholed: set[str] = field(default_factory=set)
    delays: dict[str, float] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    dropped_replies: int = 0  # How many replies `drop_replies` has thrown away so far.
    commands: list[dict[str, Any]] = field(default_factory=list)  # Every one that went up.
    _drop_match: Callable[[dict[str, Any]], bool] | None = None
    _drops_left: int = 0
    _doomed: set[int] = field(default_factory=set)  # Request ids whose reply goes nowhere.
    _thread_id: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._thread_id = threading.get_ident()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def blackhole(self, direction: Direction = "both") -> None:
        self.blackholed |= _sides(direction)

    def delay(self, seconds: float, direction: Direction = "both") -> None:
        for side in _sides(direction):
            self.delays[side] = seconds

    def drop_replies(self, match: Callable[[dict[str, Any]], bool], count: int = 1) -> None:
        if self.wire != "mongo":
            raise ValueError("drop_replies needs a proxy made with wire='mongo'")
        self._drop_match, self._drops_left = match, count

    def count(self, match: Callable[[dict[str, Any]], bool]) -> int:
        if self.wire != "mongo":
            raise ValueError("count needs a proxy made with wire='mongo'")
        return sum(1 for command in list(self.commands) if match(command))

    def heal(self) -> None:
        self.blackholed = set()
        self.delays = {}
        self._drop_match, self._drops_left = None, 0

    def reset(self) -> None:
        """Close every connection at once (from any thread)."""
        if self.loop is not None and threading.get_ident() != self._thread_id:
            self.loop.call_soon_threadsafe(self._abort_all)
        else:
            self._abort_all()

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._abort_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            if self.blackholed == {"up", "down"}:
                await self._swallow(reader)
                return
            up_reader, upstream = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
            self._writers.add(upstream)
            pumps = [
                asyncio.create_task(self._pump(reader, upstream, "up")),
                asyncio.create_task(self._pump(up_reader, writer, "down")),
            ]
            self._tasks.update(pumps)
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                    self._tasks.discard(pump)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in (writer, upstream):
                if end is not None:
                    self._writers.discard(end)
                    end.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, side: str
    ) -> None:
        chunks = self._messages(reader) if self.wire == "mongo" else self._chunks(reader)
        async for data in chunks:
            if side in self.blackholed:
                continue  # Thrown away: the other side hears nothing, ever.
            if self.wire == "mongo" and not self._passes(data, side):
                continue
            if delay := self.delays.get(side, 0.0):
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> Any:
        while data := await reader.read(CHUNK):
            yield data

    @staticmethod
    async def _messages(reader: asyncio.StreamReader) -> Any:
        """Whole wire-protocol messages, one at a time."""
        while True:
            try:
                header = await reader.readexactly(_HEADER.size)
            except asyncio.IncompleteReadError:
                return
            (length, _, _, _) = _HEADER.unpack(header)
            yield header + await reader.readexactly(length - _HEADER.size)

    def _passes(self, message: bytes, side: str) -> bool:
        """Whether a MongoDB message goes on: a reply to a doomed request does not."""
        _, request_id, response_to, _ = _HEADER.unpack_from(message)
        if side == "down":
            if response_to in self._doomed:
                self._doomed.discard(response_to)
                self.dropped_replies += 1
                return False
            return True
        command = _command(message)
        if command is not None:
            self.commands.append(command)
        match = self._drop_match
        if self._drops_left > 0 and match is not None and command is not None and match(command):
            self._drops_left -= 1
            self._doomed.add(request_id)
        return True

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        while await reader.read(CHUNK):
            pass


@contextlib.contextmanager
def fault_proxy(host: str, port: int, *, wire: Wire = "raw") -> Iterator[FaultProxy]:
    """A `FaultProxy` to `host:port`, running in its own thread and loop until the end."""
    proxy = FaultProxy(host, port, wire=wire)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fault proxy did not start")
    proxy.loop = loop
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
