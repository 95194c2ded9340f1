"""Presence records in this process: for a single instance (no Redis), and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from backend_services.core.presence import Status, best


class MemoryRegistry:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, dict[str, Status]] = {}
        self._alive_until: dict[str, float] = {}

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def beat(self, instance: str, statuses: Mapping[str, Status], ttl: float) -> bool:
        missing = instance not in self._alive_until
        self._records[instance] = dict(statuses)
        self._alive_until[instance] = self._clock() + ttl
        return missing

    async def update(self, instance: str, user_id: str, status: Status | None) -> None:
        record = self._records.setdefault(instance, {})
        if status is None:
            record.pop(user_id, None)
        else:
            record[user_id] = status

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, Status]:
        live = [self._records[i] for i in self._live() if i in self._records]
        found: dict[str, Status] = {}
        for user_id in user_ids:
            status = best([record[user_id] for record in live if user_id in record])
            if status is not None:
                found[user_id] = status
        return found

    async def reap(self) -> list[str]:
        now = self._clock()
        users: list[str] = []
        for instance in [i for i, until in self._alive_until.items() if until <= now]:
            del self._alive_until[instance]
            users += self._records.pop(instance, {})
        return users

    async def leave(self, instance: str) -> None:
        self._records.pop(instance, None)
        self._alive_until.pop(instance, None)

    def _live(self) -> list[str]:
        now = self._clock()
        return [i for i, until in self._alive_until.items() if until > now]
