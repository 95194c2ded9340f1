"""Pub/sub fan-out between message-service instances.

The shape is broadcaster's (six async methods, plus `listeners`), with an in-memory
implementation for a single instance and a Redis one for many. Brokers only move text; they
persist nothing (MongoDB does), so a lost message is recovered by reading the store, never by
the broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    channel: str
    message: str


class BrokerDisconnected(Exception):
    """The broker's connection is gone; subscriptions must be restored after `connect`."""


class Broker(Protocol):
    async def connect(self) -> None:
        """Open connections; after a `BrokerDisconnected`, call again to start afresh."""

    async def disconnect(self) -> None:
        """Close connections; pending `receive` calls raise `BrokerDisconnected`."""

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, channel: str, message: str) -> None:
        """Send to every current subscriber of `channel`, on any instance (this one included)."""

    async def receive(self) -> Event:
        """Wait for the next event on a subscribed channel."""

    async def listeners(self, channels: Sequence[str]) -> dict[str, int]:
        """How many subscriptions each channel has, on every instance (this one included)."""

    async def ping(self) -> None:
        """Raise `BrokerDisconnected` unless the broker is reachable."""


def create_broker(
    redis_url: str | None, *, max_pending: int = 10_000, timeout: float = 2.0
) -> Broker:
    """The Redis broker when a URL is given (each command answered within `timeout` seconds
    or failed), otherwise the in-process one."""
    if redis_url:
        from backend_services.core.broker.redis import RedisBroker

        return RedisBroker(redis_url, timeout=timeout)
    from backend_services.core.broker.memory import MemoryBroker

    return MemoryBroker(max_pending=max_pending)
