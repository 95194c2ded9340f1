"""An instance's read markers are stored together: one command per round, however many sockets
read, and each marker that moved is echoed once, from the socket that read furthest."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from backend_services.core.store import Database, Store
from backend_services.message_service.reads import ReadBatcher
from tests.integration.test_store import CommandLog

Echo = tuple[str, str, int, str | None]


class Echoes:
    """What the batcher asked the hub to echo, and a way to wait for it."""

    def __init__(self) -> None:
        self.seen: list[Echo] = []
        self._changed = asyncio.Condition()

    async def __call__(
        self, user_id: str, conversation_id: str, seq: int, origin: str | None
    ) -> None:
        async with self._changed:
            self.seen.append((user_id, conversation_id, seq, origin))
            self._changed.notify_all()

    async def wait_for(self, count: int) -> list[Echo]:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.seen) >= count)
        return self.seen


@pytest.fixture
async def logged_store(mongo_url: str) -> AsyncIterator[tuple[Store, CommandLog]]:
    log = CommandLog()
    database = Database(mongo_url, f"test_{uuid.uuid4().hex[:12]}", event_listeners=[log])
    store = Store(database)
    await database.ping()
    yield store, log
    await database.client.drop_database(database.db.name)
    await store.close()


async def test_reads_from_many_sockets_in_one_round_are_one_command(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store
    echoes = Echoes()
    batcher = ReadBatcher(store.reads, echoes, interval=0.2)
    batcher.start()
    try:
        log.names.clear()
        for user in range(10):
            for seq in (1, 3, 2):  # Out of order: the highest wins.
                batcher.add(f"u{user}", "group", seq, f"socket-{user}-{seq}")
        batcher.add("u0", "dm", 4, "socket-dm")

        seen = await echoes.wait_for(11)
        assert sorted(seen) == sorted(
            [(f"u{user}", "group", 3, f"socket-{user}-3") for user in range(10)]
            + [("u0", "dm", 4, "socket-dm")]
        )
        assert log.names == ["update"]
        assert await store.reads.get_many("u0", ["group", "dm"]) == {"group": 3, "dm": 4}
    finally:
        await batcher.close()


async def test_a_read_that_another_device_overtook_is_stored_but_not_echoed(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, _ = logged_store
    echoes = Echoes()
    batcher = ReadBatcher(store.reads, echoes, interval=0.2)
    batcher.start()
    try:
        await store.reads.advance("dm", "bob", 8)  # Bob read further on another instance.
        batcher.add("bob", "dm", 5, "phone")
        batcher.add("alice", "dm", 6, "laptop")

        # Echoes come after the write, in one round: once Alice's is there, Bob's is decided.
        assert await echoes.wait_for(1) == [("alice", "dm", 6, "laptop")]
        assert echoes.seen == [("alice", "dm", 6, "laptop")]
        assert await store.reads.get("dm", "bob") == 8
    finally:
        await batcher.close()


async def test_reads_still_waiting_are_stored_on_close(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, _ = logged_store
    echoes = Echoes()
    batcher = ReadBatcher(store.reads, echoes, interval=60)  # No round would come in time.
    batcher.start()
    batcher.add("carol", "group", 12, "tab")

    await batcher.close()

    assert await store.reads.get("group", "carol") == 12
    assert echoes.seen == [("carol", "group", 12, "tab")]


async def test_a_senders_own_marker_is_stored_without_an_echo(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, _ = logged_store
    echoes = Echoes()
    batcher = ReadBatcher(store.reads, echoes, interval=0.2)
    batcher.start()
    try:
        batcher.add("alice", "dm", 3, None, echo=False)  # Alice sent seq 3.
        batcher.add("bob", "dm", 2, "bob-tab")

        assert await echoes.wait_for(1) == [("bob", "dm", 2, "bob-tab")]
        assert await store.reads.get("dm", "alice") == 3
        assert echoes.seen == [("bob", "dm", 2, "bob-tab")]
    finally:
        await batcher.close()
