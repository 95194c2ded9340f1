"""Redis pub/sub. One connection listens, a small pool publishes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from backend_services.core.broker import BrokerDisconnected, Event

_CONNECTION_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class RedisBroker:
    def __init__(self, url: str) -> None:
        self._url = url
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reading: asyncio.Future[dict[str, Any] | None] | None = None
        # A channel only this instance listens on: the listening connection exists (and fails
        # loudly when Redis goes away) even before any user subscribes to anything.
        self._own_channel = f"letschat:instance:{uuid.uuid4().hex}"

    async def connect(self) -> None:
        await self.disconnect()
        self._redis = Redis.from_url(
            self._url,
            decode_responses=True,
            socket_connect_timeout=2,
            health_check_interval=10,
            # No silent reconnects: a pub/sub connection that reconnects by itself hides the
            # messages published meanwhile. The hub reconnects and backfills from the store.
            retry=Retry(NoBackoff(), 0),
        )
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await self._pubsub.subscribe(self._own_channel)
        except _CONNECTION_ERRORS as exc:
            raise BrokerDisconnected(str(exc)) from exc

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
        while True:
            # Read in a task of our own, so `disconnect` can stop a read in progress: otherwise
            # redis-py reconnects the closed connection under us and leaks it.
            reading = asyncio.ensure_future(
                pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
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
            if raw is not None and raw.get("type") == "message":
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
