"""Two Reflex backend replicas on the real Redis: a tab whose replica died reconnects to the
other with its token (so its state), while a duplicated tab of a live replica still gets a token
of its own (letschat_app/failover.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from reflex.utils.token_manager import RedisTokenManager

from letschat_app import failover


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[RedisTokenManager, RedisTokenManager]]:
    failover.install()  # As rxconfig.py does in every backend process.
    first, second = (RedisTokenManager(Redis.from_url(redis_url)) for _ in range(2))
    yield first, second
    for manager in (first, second):
        await manager.close()


async def die(manager: RedisTokenManager) -> None:
    """SIGKILL, as far as Redis can tell: it stops beating and cleans nothing up."""
    beat = manager._letschat_beat  # type: ignore[attr-defined]
    beat.cancel()


async def test_a_tab_of_a_dead_replica_keeps_its_token_on_the_other(
    replicas: tuple[RedisTokenManager, RedisTokenManager],
) -> None:
    first, second = replicas
    token = str(uuid.uuid4())
    assert await first.link_token_to_sid(token, "sid-on-first") is None
    await die(first)
    # Its socket record is still in Redis; the tab reconnects to the other replica at once.
    assert await second.link_token_to_sid(token, "sid-on-second") is None


async def test_a_duplicated_tab_of_a_live_replica_gets_a_token_of_its_own(
    replicas: tuple[RedisTokenManager, RedisTokenManager],
) -> None:
    first, second = replicas
    token = str(uuid.uuid4())
    assert await first.link_token_to_sid(token, "sid-on-first") is None
    new_token = await second.link_token_to_sid(token, "sid-on-second")
    assert new_token is not None
    assert new_token != token
