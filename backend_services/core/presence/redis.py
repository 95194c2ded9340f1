"""Presence records in Redis, shared by every instance.

    {prefix}presence:instances       a set of the instances that have a record
    {prefix}presence:alive:{id}      present while the instance is alive (expires after ttl)
    {prefix}presence:record:{id}     a hash: user id -> online | away

Liveness is Redis's own expiry, so the instances' clocks never have to agree. A record outlives
its mark until an instance reaps it (at most a day, should every instance be gone).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from backend_services.core.presence import PresenceUnavailable, Status, best
from backend_services.core.redis_client import redis_client

_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
# Reap one instance if it is still dead: take it out of the set (whoever does, reaps it) and
# hand its record's users over. KEYS: the set, its mark, its record; ARGV: its id.
REAP_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return false end
local users = redis.call('HKEYS', KEYS[3])
redis.call('DEL', KEYS[3])
return users
"""
# How long a record of an instance nobody reaped is kept at most.
RECORD_KEEP_SECONDS = 86_400


class RedisRegistry:
    def __init__(self, url: str, *, prefix: str, timeout: float = 2.0) -> None:
        self._url = url
        self._timeout = timeout
        self._instances = f"{prefix}presence:instances"
        self._prefix = prefix
        self._redis: Redis | None = None

    def _alive(self, instance: str) -> str:
        return f"{self._prefix}presence:alive:{instance}"

    def _record(self, instance: str) -> str:
        return f"{self._prefix}presence:record:{instance}"

    async def connect(self) -> None:
        await self.disconnect()
        # One retry: a record written twice is the same record.
        self._redis = redis_client(self._url, timeout=self._timeout, retries=1)

    async def disconnect(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            with contextlib.suppress(*_ERRORS):
                await redis.aclose()

    async def beat(self, instance: str, statuses: Mapping[str, Status], ttl: float) -> bool:
        record = self._record(instance)
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.sadd(self._instances, instance)
            pipe.delete(record)
            if statuses:
                pipe.hset(record, mapping=dict(statuses))
            pipe.expire(record, RECORD_KEEP_SECONDS)
            pipe.set(self._alive(instance), "1", ex=max(1, math.ceil(ttl)))
            replies = await self._run(pipe)
        return bool(replies[0])

    async def update(self, instance: str, user_id: str, status: Status | None) -> None:
        redis = self._client()
        try:
            if status is None:
                await redis.hdel(self._record(instance), user_id)  # type: ignore[misc]
            else:
                await redis.hset(self._record(instance), user_id, status)  # type: ignore[misc]
        except _ERRORS as exc:
            raise PresenceUnavailable(str(exc)) from exc

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, Status]:
        if not user_ids:
            return {}
        instances = await self._members()
        if not instances:
            return {}
        ids = list(user_ids)
        async with self._client().pipeline(transaction=False) as pipe:
            for instance in instances:
                pipe.exists(self._alive(instance))
                pipe.hmget(self._record(instance), ids)
            replies = await self._run(pipe)
        records = [
            values for alive, values in zip(replies[::2], replies[1::2], strict=True) if alive
        ]
        found: dict[str, Status] = {}
        for index, user_id in enumerate(ids):
            status = best([values[index] for values in records if values[index] is not None])
            if status is not None:
                found[user_id] = status
        return found

    async def reap(self) -> list[str]:
        instances = await self._members()
        if not instances:
            return []
        async with self._client().pipeline(transaction=False) as pipe:
            for instance in instances:
                pipe.exists(self._alive(instance))
            alive = await self._run(pipe)
        users: list[str] = []
        for instance, is_alive in zip(instances, alive, strict=True):
            if is_alive:
                continue
            keys = [self._instances, self._alive(instance), self._record(instance)]
            try:
                # One step: an instance whose beat came in meanwhile is alive, not reaped.
                claimed = await self._reap_one(keys=keys, args=[instance])
            except _ERRORS as exc:
                raise PresenceUnavailable(str(exc)) from exc
            users += claimed or []
        return users

    async def leave(self, instance: str) -> None:
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.srem(self._instances, instance)
            pipe.delete(self._alive(instance), self._record(instance))
            await self._run(pipe)

    async def _members(self) -> list[str]:
        try:
            return sorted(await self._client().smembers(self._instances))  # type: ignore[misc]
        except _ERRORS as exc:
            raise PresenceUnavailable(str(exc)) from exc

    async def _run(self, pipe: Any) -> list[Any]:
        try:
            return list(await pipe.execute())
        except _ERRORS as exc:
            raise PresenceUnavailable(str(exc)) from exc

    async def _reap_one(self, *, keys: list[str], args: list[str]) -> list[str] | None:
        result = await self._client().eval(REAP_SCRIPT, len(keys), *keys, *args)  # type: ignore[misc]
        return list(result) if result else None

    def _client(self) -> Redis:
        if self._redis is None:
            raise PresenceUnavailable("presence registry is not connected")
        return self._redis
