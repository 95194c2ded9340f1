"""An instance's read markers are stored together: one command per conversation and round,
however many sockets read, and each marker that moved is echoed once, from the socket that read
furthest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from backend_services.core.store import Store
from backend_services.message_service.reads import Echo, ReadBatcher
from tests.integration.conftest import CommandLog


class Echoes:
    """What the batcher asked the hub to echo, and a way to wait for it."""

    def __init__(self) -> None:
        self.seen: list[Echo] = []
        self._changed = asyncio.Condition()

    async def __call__(self, echoes: list[Echo]) -> None:
        async with self._changed:
            self.seen.extend(echoes)
            self._changed.notify_all()

    async def wait_for(self, count: int) -> list[Echo]:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.seen) >= count)
        return self.seen


@pytest.fixture
async def batcher(
    logged_store: tuple[Store, CommandLog],
) -> AsyncIterator[tuple[ReadBatcher, Echoes, Store, CommandLog]]:
    """A running batcher over a fresh store, writing every 0.2 s, recording its echoes."""
    store, log = logged_store
    echoes = Echoes()
    running = ReadBatcher(store.reads, echoes, interval=0.2)
    running.start()
    yield running, echoes, store, log
    await running.close()


async def test_reads_from_many_sockets_in_one_round_are_one_command_per_conversation(
    batcher: tuple[ReadBatcher, Echoes, Store, CommandLog],
) -> None:
    reads, echoes, store, log = batcher
    for user in range(10):
        for seq in (1, 3, 2):  # Out of order: the highest wins.
            reads.add(f"u{user}", "group", seq, f"socket-{user}-{seq}")
    reads.add("u0", "dm", 4, "socket-dm")

    seen = await echoes.wait_for(11)
    assert sorted(seen) == sorted(
        [(f"u{user}", "group", 3, f"socket-{user}-3") for user in range(10)]
        + [("u0", "dm", 4, "socket-dm")]
    )
    assert log.names == ["findAndModify", "findAndModify"]  # The group's ten, and the DM.
    assert await store.reads.get_many("u0", ["group", "dm"]) == {"group": 3, "dm": 4}


async def test_a_read_that_another_device_overtook_is_stored_but_not_echoed(
    batcher: tuple[ReadBatcher, Echoes, Store, CommandLog],
) -> None:
    reads, echoes, store, _ = batcher
    await store.reads.advance("dm", "bob", 8)  # Bob read further on another instance.
    reads.add("bob", "dm", 5, "phone")
    reads.add("alice", "dm", 6, "laptop")

    # Echoes come after the write, in one round: once Alice's is there, Bob's is decided.
    assert await echoes.wait_for(1) == [("alice", "dm", 6, "laptop")]
    assert echoes.seen == [("alice", "dm", 6, "laptop")]
    assert await store.reads.get("dm", "bob") == 8


async def test_a_senders_own_marker_is_stored_without_an_echo(
    batcher: tuple[ReadBatcher, Echoes, Store, CommandLog],
) -> None:
    reads, echoes, store, _ = batcher
    reads.add("alice", "dm", 3, None, echo=False)  # Alice sent seq 3.
    reads.add("bob", "dm", 2, "bob-tab")

    # One round: Bob's echo comes after the write that stored both.
    assert await echoes.wait_for(1) == [("bob", "dm", 2, "bob-tab")]
    assert await store.reads.get("dm", "alice") == 3
    assert echoes.seen == [("bob", "dm", 2, "bob-tab")]


async def test_reads_still_waiting_are_stored_on_close(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, _ = logged_store
    echoes = Echoes()
    reads = ReadBatcher(store.reads, echoes, interval=60)  # No round would come in time.
    reads.start()
    reads.add("carol", "group", 12, "tab")

    await reads.close()

    assert await store.reads.get("group", "carol") == 12
    assert echoes.seen == [("carol", "group", 12, "tab")]


async def test_a_busy_conversations_markers_are_written_together_once_per_repeat(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store
    echoes = Echoes()
    reads = ReadBatcher(store.reads, echoes, interval=0.05, repeat=1.0)
    reads.start()
    try:
        reads.add("bob", "group", 1, "tab")
        await echoes.wait_for(1)
        first = time.monotonic()
        for seq in (2, 3, 4):  # Bob keeps reading a busy group...
            reads.add("bob", "group", seq, "tab")
            await asyncio.sleep(0.1)
        reads.add("carol", "group", 4, "phone")  # ...and so does Carol, who just came in...
        reads.add("carol", "dm", 7, "phone")  # ...and reads a DM quiet until now.

        seen = await echoes.wait_for(4)
        again = time.monotonic()
        # The DM goes in the next round; the group's readers wait out its second, together.
        assert seen[:2] == [("bob", "group", 1, "tab"), ("carol", "dm", 7, "phone")]
        assert sorted(seen[2:]) == [("bob", "group", 4, "tab"), ("carol", "group", 4, "phone")]
        assert again - first >= 0.9  # The repeat, less what observing the first echo took.
        assert log.names == ["findAndModify"] * 3  # The group, the DM, the group's two.
        assert await store.reads.get_many("carol", ["group", "dm"]) == {"group": 4, "dm": 7}
        assert await store.reads.get("group", "bob") == 4
    finally:
        await reads.close()
