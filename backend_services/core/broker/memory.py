"""A broker for one process: publish delivers to this process's own subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from backend_services.core.broker import BrokerDisconnected, Event

_CLOSED = Event(channel="", message="")


class MemoryBroker:
    def __init__(self, *, max_pending: int = 10_000) -> None:
        self._max_pending = max_pending
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=max_pending)
        self._channels: set[str] = set()
        self._connected = False

    async def connect(self) -> None:
        self._queue = asyncio.Queue(maxsize=self._max_pending)
        self._channels.clear()
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False
        self._channels.clear()
        # Wake a pending receive(); a full queue has a reader that will see _connected=False.
        if not self._queue.full():
            self._queue.put_nowait(_CLOSED)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, message: str) -> None:
        if not self._connected:
            raise BrokerDisconnected("in-memory broker is not connected")
        if channel in self._channels:
            # Waiting here (rather than dropping) gives publishers back-pressure, as Redis would.
            await self._queue.put(Event(channel, message))

    async def receive(self) -> Event:
        if not self._connected:
            raise BrokerDisconnected("in-memory broker is not connected")
        event = await self._queue.get()
        if event is _CLOSED or not self._connected:
            raise BrokerDisconnected("in-memory broker was disconnected")
        return event

    async def listeners(self, channels: Sequence[str]) -> dict[str, int]:
        if not self._connected:
            raise BrokerDisconnected("in-memory broker is not connected")
        return {channel: int(channel in self._channels) for channel in channels}

    async def ping(self) -> None:
        if not self._connected:
            raise BrokerDisconnected("in-memory broker is not connected")
