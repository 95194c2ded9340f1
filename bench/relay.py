"""The fan-out ceiling: a bare `websockets` relay that rebroadcasts every frame to every client.

No auth, no storage, no broker, no per-socket queue: one process, one event loop, and
`websockets.broadcast`, which writes each frame straight into every transport. Nothing written
in Python on one core fans out faster, so the message service is measured against it.

    python -m bench.relay --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

# The same frame limit uvicorn gets from LETSCHAT_MAX_FRAME_BYTES' default.
MAX_FRAME_BYTES = 64 * 1024


def _readyz(connection: ServerConnection, request: Request) -> Response | None:
    """Answer plain `GET /readyz` so the harness can poll it like the real services."""
    if request.path == "/readyz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def run_relay(port: int) -> None:
    clients: set[ServerConnection] = set()

    async def handler(websocket: ServerConnection) -> None:
        clients.add(websocket)
        try:
            async for frame in websocket:
                broadcast(clients, frame)
        finally:
            clients.discard(websocket)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(handler, "127.0.0.1", port, process_request=_readyz, max_size=MAX_FRAME_BYTES):
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    try:
        import uvloop
    except ImportError:
        asyncio.run(run_relay(port))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(run_relay(port))


if __name__ == "__main__":
    main()
