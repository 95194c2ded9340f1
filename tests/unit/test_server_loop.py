"""The services' uvicorn loop: idle, it wakes once a tick, not ten times a second; a shutdown
request wakes it at once."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
import uvicorn

from backend_services import web


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("no requests in these tests")


def _server(ticks: list[float]) -> web._Server:
    config = uvicorn.Config(_app, lifespan="off", log_level="warning")
    config.load()
    server = web._Server(config, None)
    on_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(asyncio.get_running_loop().time())
        return await on_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    return server


async def test_an_idle_server_waits_for_its_tick_or_a_shutdown_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(web, "TICK_SECONDS", 60.0)
    ticks: list[float] = []
    server = _server(ticks)
    loop = asyncio.get_running_loop()
    # As the signal handler would be called (uvicorn installs handle_exit for SIGTERM).
    loop.call_later(0.5, server.handle_exit, signal.SIGTERM, None)
    started = loop.time()
    async with asyncio.timeout(10):
        await server.main_loop()
    # One tick on entry and one for the request: uvicorn's own loop ticks every 0.1 s.
    assert len(ticks) == 2
    assert server.should_exit
    assert ticks[1] - started < 5


async def test_an_idle_server_still_refreshes_its_date_header_each_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(web, "TICK_SECONDS", 0.05)
    ticks: list[float] = []
    server = _server(ticks)
    loop = asyncio.get_running_loop()
    headers: list[Any] = []

    def stop_after_some_ticks() -> None:
        headers.append(server.server_state.default_headers)
        server.handle_exit(signal.SIGTERM, None)

    loop.call_later(0.5, stop_after_some_ticks)
    async with asyncio.timeout(10):
        await server.main_loop()
    assert len(ticks) >= 3
    assert any(name == b"date" for name, _ in headers[0])
