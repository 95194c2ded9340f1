"""Who is connected, and how: each instance's record of its users, shared through Redis.

An instance knows what its own sockets report (a tab is open and used: `online`; every tab idle
or hidden: `away`). It writes that record whole on every heartbeat and each change in between,
and marks itself alive for `ttl` seconds. A person's status is the best any live instance
records (`online` over `away`); absent everywhere, they are offline. An instance that stops
without a word (SIGKILL, a lost host) stops renewing its mark: within `ttl` its record no longer
counts, and the next instance to `reap` it gets its users, to tell their contacts. Nothing here
is stored for good: the last-seen time is MongoDB's (`UserStore`).

The shape follows the broker's: a Protocol, an in-memory implementation for a single instance,
and a Redis one for many, with one contract test body over both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

Status = Literal["online", "away"]
# Worst to best: a person online in one tab and away in another is online.
ORDER: tuple[Status, ...] = ("away", "online")


class PresenceUnavailable(Exception):
    """The shared record could not be read or written (Redis is unreachable)."""


class PresenceRegistry(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def beat(self, instance: str, statuses: Mapping[str, Status], ttl: float) -> bool:
        """Replace `instance`'s record with `statuses` and mark it alive for `ttl` seconds;
        return whether it had no record (its first beat, or it was reaped: a beat that came
        too late, and its users were told they went offline)."""

    async def update(self, instance: str, user_id: str, status: Status | None) -> None:
        """Change one user in `instance`'s record (None: no socket of theirs is left there)."""

    async def statuses(self, user_ids: Sequence[str]) -> dict[str, Status]:
        """The best status any live instance records for each user; offline users are absent."""

    async def reap(self) -> list[str]:
        """The users of instances that stopped without leaving, each instance claimed by one
        caller only; their records are gone afterwards."""

    async def leave(self, instance: str) -> None:
        """`instance` stops: its record goes at once."""


def best(statuses: Sequence[str]) -> Status | None:
    """The status that wins among one user's records."""
    found: Status | None = None
    for status in ORDER:
        if status in statuses:
            found = status
    return found


def create_registry(
    redis_url: str | None, *, prefix: str, timeout: float = 2.0
) -> PresenceRegistry:
    """The Redis registry when a URL is given, otherwise the in-process one."""
    if redis_url:
        from backend_services.core.presence.redis import RedisRegistry

        return RedisRegistry(redis_url, prefix=prefix, timeout=timeout)
    from backend_services.core.presence.memory import MemoryRegistry

    return MemoryRegistry()
