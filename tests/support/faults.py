"""A TCP proxy that injects faults between a service and what it depends on (MongoDB, Redis).

It runs on 127.0.0.1 in a thread of its own (so it keeps forwarding while a test blocks, e.g.
while `running_stack` waits for the services to start) and forwards each connection to the
upstream.
`blackhole()` makes it a stalled network: bytes are read and thrown away in both directions and
new connections are accepted but never reach the upstream, so clients wait until their own
timeouts fire. `delay(seconds)` holds every chunk that long; `reset()` closes every connection
at once; `heal()` goes back to forwarding (connections blackholed meanwhile stay dead, as after
a real partition; clients open new ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    port: int = 0
    blackholed: bool = False
    delay_seconds: float = 0.0
    loop: asyncio.AbstractEventLoop | None = None
    _thread_id: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._thread_id = threading.get_ident()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def blackhole(self) -> None:
        self.blackholed = True

    def delay(self, seconds: float) -> None:
        self.delay_seconds = seconds

    def heal(self) -> None:
        self.blackholed = False
        self.delay_seconds = 0.0

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
            if self.blackholed:
                await self._swallow(reader)
                return
            up_reader, upstream = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
            self._writers.add(upstream)
            pumps = [
                asyncio.create_task(self._pump(reader, upstream)),
                asyncio.create_task(self._pump(up_reader, writer)),
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

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(CHUNK):
            if self.blackholed:
                continue  # Thrown away: the other side hears nothing, ever.
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            writer.write(data)
            await writer.drain()

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        while await reader.read(CHUNK):
            pass


@contextlib.contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    """A `FaultProxy` to `host:port`, running in its own thread and loop until the end."""
    proxy = FaultProxy(host, port)
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
