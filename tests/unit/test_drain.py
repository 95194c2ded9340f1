"""Shutting down: from the signal on, nothing new is taken (503 for requests, 1012 for new
sockets, `/healthz` still alive), and the listener closes before the drain hook runs."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket

from backend_services import web


def _app() -> tuple[FastAPI, web.Draining]:
    app = FastAPI()
    web.install_error_handlers(app)
    draining = web.install_drain_guard(app)
    app.include_router(web.health_router({}))

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    return app, draining


async def _open_socket(app: FastAPI) -> list[dict[str, Any]]:
    """What the app sends a client that opens /ws, up to its close."""
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    return sent


async def test_a_draining_instance_refuses_new_requests_and_sockets_but_stays_alive() -> None:
    app, draining = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/readyz")).status_code == 200
        assert [m["type"] for m in await _open_socket(app)] == [
            "websocket.accept",
            "websocket.send",
            "websocket.close",
        ]

        draining.on = True

        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["code"] == "service_unavailable"
        assert ready.headers["connection"] == "close"
        assert (await client.get("/no-such-route")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200  # Alive: do not kill it.
        refused = await _open_socket(app)
        assert [m["type"] for m in refused] == ["websocket.accept", "websocket.close"]
        assert refused[-1]["code"] == 1012


async def test_the_signal_starts_draining_and_the_listener_closes_before_the_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, draining = _app()
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    config.load()
    seen: list[str] = []

    class Listener:
        def close(self) -> None:
            seen.append("listener closed")

        async def wait_closed(self) -> None:
            return None

    async def hook() -> None:
        seen.append("hook")

    async def uvicorn_shutdown(self: uvicorn.Server, sockets: object = None) -> None:
        seen.append("uvicorn's shutdown")

    monkeypatch.setattr(uvicorn.Server, "shutdown", uvicorn_shutdown)

    server = web._Server(config, hook, draining)
    server.servers = [Listener()]  # type: ignore[list-item]

    server.handle_exit(signal.SIGTERM, None)
    assert draining.on
    await server.shutdown()

    assert seen == ["listener closed", "hook", "uvicorn's shutdown"]
