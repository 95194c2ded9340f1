"""One contract for every presence registry: in-memory and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from backend_services.core.presence import PresenceRegistry
from backend_services.core.presence.memory import MemoryRegistry
from backend_services.core.presence.redis import RedisRegistry
from tests.contract.conftest import REDIS_URL

# Liveness is the registry's own clock (Redis expiry; the memory one's clock is moved here).
TTL = 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PresenceRegistry, Clock]]:
    clock = Clock()
    implementation: PresenceRegistry = (
        MemoryRegistry(clock)
        if request.param == "memory"
        else RedisRegistry(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    )
    await implementation.connect()
    yield implementation, clock
    await implementation.disconnect()


async def expire(registry: PresenceRegistry, clock: Clock, instance: str) -> None:
    """Let `instance`'s mark run out, as if it had been killed."""
    if isinstance(registry, MemoryRegistry):
        clock.now += TTL
    else:
        assert isinstance(registry, RedisRegistry)
        await registry._client().delete(registry._alive(instance))


async def test_the_best_status_of_the_live_instances_wins(
    registry: tuple[PresenceRegistry, Clock],
) -> None:
    presence, _ = registry
    await presence.beat("i1", {"ada": "away", "bob": "online"}, TTL * 60)
    await presence.beat("i2", {"ada": "online"}, TTL * 60)
    assert await presence.statuses(["ada", "bob", "cy"]) == {"ada": "online", "bob": "online"}
    await presence.update("i2", "ada", None)
    await presence.update("i1", "bob", "away")
    await presence.update("i1", "cy", "online")
    assert await presence.statuses(["ada", "bob", "cy"]) == {
        "ada": "away",
        "bob": "away",
        "cy": "online",
    }
    assert await presence.statuses([]) == {}


async def test_a_beat_replaces_the_record_whole(registry: tuple[PresenceRegistry, Clock]) -> None:
    presence, _ = registry
    await presence.beat("i1", {"ada": "online", "bob": "online"}, TTL * 60)
    await presence.beat("i1", {"bob": "away"}, TTL * 60)
    assert await presence.statuses(["ada", "bob"]) == {"bob": "away"}
    await presence.beat("i1", {}, TTL * 60)
    assert await presence.statuses(["ada", "bob"]) == {}


async def test_an_instance_that_stopped_beating_is_reaped_once(
    registry: tuple[PresenceRegistry, Clock],
) -> None:
    presence, clock = registry
    assert await presence.beat("dead", {"ada": "online", "bob": "away"}, TTL)  # First: new.
    assert await presence.beat("alive", {"bob": "online"}, TTL * 60)
    assert not await presence.beat("alive", {"bob": "online"}, TTL * 60)
    assert await presence.reap() == []
    await expire(presence, clock, "dead")
    assert await presence.statuses(["ada", "bob"]) == {"bob": "online"}
    assert sorted(await presence.reap()) == ["ada", "bob"]
    assert await presence.reap() == []  # Claimed by the first caller only.
    assert await presence.statuses(["ada", "bob"]) == {"bob": "online"}
    # Its late beat says it was reaped (its users were told they went), and counts again.
    assert await presence.beat("dead", {"ada": "online"}, TTL * 60)
    assert await presence.statuses(["ada"]) == {"ada": "online"}


async def test_an_instance_that_leaves_is_gone_at_once(
    registry: tuple[PresenceRegistry, Clock],
) -> None:
    presence, _ = registry
    await presence.beat("i1", {"ada": "online"}, TTL * 60)
    await presence.leave("i1")
    assert await presence.statuses(["ada"]) == {}
    assert await presence.reap() == []
