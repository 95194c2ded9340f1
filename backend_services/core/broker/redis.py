"""Redis pub/sub. One connection listens, a small pool publishes.

Every command has `timeout` seconds to be answered, so a stalled Redis (a network that takes
bytes and returns none) costs a publish that long, never forever: the caller gets
`BrokerDisconnected` and delivers what it can meanwhile. A listening connection is silent
while nobody publishes, so silence alone proves nothing: the listener publishes an echo on
its instance's own channel every `echo_seconds`, and a listener that hears nothing at all,
echo included, for `echo_seconds + timeout` reports itself disconnected (the hub then
reconnects and backfills from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from backend_services.core.broker import BrokerDisconnected, Event
from backend_services.core.redis_client import redis_client

_CONNECTION_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class RedisBroker:
    def __init__(self, url: str, *, timeout: float = 2.0, echo_seconds: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._echo_seconds = echo_seconds
        self._heard_at = 0.0  # When the listening connection last received anything.
        self._echo_at = 0.0  # When the listener publishes its next echo.
        self.echoes_heard = 0
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reading: asyncio.Future[dict[str, Any] | None] | None = None
        # A channel only this instance listens on: the listening connection exists (and fails
        # loudly when Redis goes away) even before any user subscribes to anything.
        self._own_channel = f"letschat:instance:{uuid.uuid4().hex}"

    async def connect(self) -> None:
        await self.disconnect()
        # No silent reconnects: a pub/sub connection that reconnects by itself hides the
        # messages published meanwhile. The hub reconnects and backfills from the store.
        self._redis = redis_client(self._url, timeout=self._timeout, retries=0)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await self._pubsub.subscribe(self._own_channel)
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc
        self._heard_at = self._echo_at = asyncio.get_running_loop().time()

    async def disconnect(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.wait({self._reading})
        pubsub, redis = self._pubsub, self._redis
        self._pubsub = self._redis = None
        if pubsub is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        if redis is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await redis.aclose()

    async def subscribe(self, channel: str) -> None:
        try:
            await self._require_pubsub().subscribe(channel)
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc

    async def unsubscribe(self, channel: str) -> None:
        try:
            await self._require_pubsub().unsubscribe(channel)
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc

    async def publish(self, channel: str, message: str) -> None:
        if self._redis is None:
            raise BrokerDisconnected("redis broker is not connected")
        try:
            await self._redis.publish(channel, message)
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc

    async def receive(self) -> Event:
        pubsub = self._require_pubsub()
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if now - self._heard_at > self._echo_seconds + self._timeout:
                raise BrokerDisconnected("redis stopped answering the listening connection")
            if now >= self._echo_at:
                self._echo_at = now + self._echo_seconds
                await self.publish(self._own_channel, "echo")
            # Read in a task of our own, so `disconnect` can stop a read in progress: otherwise
            # redis-py reconnects the closed connection under us and leaks it.
            reading = asyncio.ensure_future(
                pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=max(self._echo_at - now, 0.01)
                )
            )
            self._reading = reading
            try:
                await asyncio.wait({reading})
            finally:
                self._reading = None
                if not reading.done():  # We were cancelled ourselves.
                    reading.cancel()
            if reading.cancelled():
                raise BrokerDisconnected("redis broker was disconnected")
            try:
                raw: dict[str, Any] | None = reading.result()
            except (*_CONNECTION_ERRORS, RuntimeError) as exc:
                raise BrokerDisconnected(str(exc)) from exc
            if raw is None:
                continue  # Nothing within the wait; nothing heard.
            self._heard_at = loop.time()
            if raw.get("type") != "message":
                continue
            if raw["channel"] == self._own_channel:
                self.echoes_heard += 1
                continue
            return Event(channel=raw["channel"], message=raw["data"])

    async def listeners(self, channels: Sequence[str]) -> dict[str, int]:
        if self._redis is None:
            raise BrokerDisconnected("redis broker is not connected")
        if not channels:
            return {}
        try:
            counts = await self._redis.pubsub_numsub(*channels)
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc
        return {str(channel): int(count) for channel, count in counts}

    async def ping(self) -> None:
        if self._redis is None:
            raise BrokerDisconnected("redis broker is not connected")
        try:
            await self._redis.ping()  # type: ignore[misc]
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc

    def _require_pubsub(self) -> PubSub:
        if self._pubsub is None:
            raise BrokerDisconnected("redis broker is not connected")
        return self._pubsub
