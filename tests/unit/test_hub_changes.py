"""The hub's change feed against a store it cannot reach early: a socket that is up to date goes
live even when the first live change does not follow its cursor, and one that joins a
conversation misses no change made while its messages are read."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend_services.core.schemas import Change, Cursor, Message
from backend_services.core.store import Batch, ChangeBatch
from backend_services.message_service import frames
from backend_services.message_service.connection import Close, Connection
from backend_services.message_service.envelope import Envelope
from backend_services.message_service.hub import Hub
from backend_services.message_service.prepared_frames import text_of
from tests.unit.test_connection import connection

CID = "c"


class Broker:
    async def subscribe(self, channel: str) -> None:
        pass

    async def unsubscribe(self, channel: str) -> None:
        pass

    async def publish(self, channel: str, message: str) -> None:
        pass


@dataclass
class Store:
    """What the hub reads: one conversation, its change counter, and a change log whose
    entries become frames carrying their number."""

    counter: int = 0
    written: list[int] = field(default_factory=list)  # Change numbers readable in the log.
    # Set while the messages are being read; the read waits for `messages_go`.
    reading_messages: asyncio.Event = field(default_factory=asyncio.Event)
    messages_go: asyncio.Event = field(default_factory=asyncio.Event)
    # The counter answers once this is set.
    counter_go: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.messages_go.set()
        self.counter_go.set()
        self.conversations = self
        self.states = self
        self.messages = _Messages(self)
        self.changes = _Changes(self)

    async def ids_for(self, user_id: str) -> list[str]:
        return [CID]

    async def stale_cursors(self, claimed: dict[str, Any]) -> dict[str, str]:
        return {}

    async def changes_counted(self, ids: list[str]) -> dict[str, int]:
        counter = self.counter
        await self.counter_go.wait()
        return {CID: counter}

    async def allocated(self, ids: list[str]) -> dict[str, int]:
        return {CID: 0}


@dataclass
class _Messages:
    store: Store

    async def read_after(self, cid: str, after: int, **_: Any) -> Batch:
        self.store.reading_messages.set()
        await self.store.messages_go.wait()
        return Batch(messages=[], through_seq=after, first_seq=None, has_more=False)


@dataclass
class _Changes:
    store: Store

    async def read_after(self, cid: str, after: int, **_: Any) -> ChangeBatch:
        numbers = [n for n in sorted(self.store.written) if n > after]
        return ChangeBatch(
            changes=[Change(change=n, message=MESSAGE) for n in numbers],
            through=max([after, *numbers]),
            first=None,
            has_more=False,
        )


MESSAGE = Message(
    id="m1",
    conversation_id=CID,
    seq=1,
    sender_id="u2",
    sender_name="Bob",
    body="hi",
    client_msg_id="c1",
    created_at=datetime(2026, 12, 1, tzinfo=UTC),
)


def change(number: int) -> Envelope:
    return Envelope("change", CID, frames.change(Change(change=number, message=MESSAGE)), number)


def sent_changes(conn: Connection) -> list[int]:
    """The numbers of the change frames the socket was sent since the last call."""
    texts = [text_of(f) for f in conn.outbox.take_nowait() if not isinstance(f, Close)]
    return [frame["change"] for frame in map(json.loads, texts) if frame["type"] == "change"]


async def settle(predicate: Any) -> None:
    """Let the hub's tasks run until `predicate()` holds (bounded)."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 - the hub has no event to wait on
            await asyncio.sleep(0.001)


async def test_an_up_to_date_socket_goes_live_when_the_first_change_skips_a_lost_number() -> None:
    store = Store(counter=10, written=[10])
    hub = Hub(Broker(), store, channel_prefix="", resume_limit=300, reorder_wait=0.01)  # type: ignore[arg-type]
    conn = connection()
    await hub.register(conn)
    store.counter_go.clear()
    resuming = asyncio.create_task(hub.resume(conn, {CID: Cursor(seq=0, epoch="0", change=10)}))
    await settle(lambda: CID in conn.changes)
    # The counter is asked (10). Then 11 loses its version race on another instance (a
    # tombstone, never published), and 12 is published: the first change this instance's
    # topic hears, while the socket resumes.
    store.written = [10, 12]
    hub._on_numbered(change(12))
    store.counter_go.set()
    await resuming

    stream = conn.changes[CID]
    for number in (13, 14):
        hub._on_numbered(change(number))
    sent: list[int] = []
    await settle(lambda: sent.extend(sent_changes(conn)) or len(sent) >= 3)
    assert sent == [12, 13, 14]
    assert stream.held == 0
    assert not stream.filling


async def test_a_change_made_while_a_joined_conversations_messages_are_read_is_sent() -> None:
    store = Store(counter=10, written=list(range(1, 11)))
    hub = Hub(Broker(), store, channel_prefix="", resume_limit=300)  # type: ignore[arg-type]
    conn = connection()
    conn.resumed = True
    await hub.register(conn)
    store.messages_go.clear()

    await hub._on_user_event("u1", Envelope("conversation", CID, '{"type":"conversation"}'))
    await store.reading_messages.wait()
    # Change 11 is made and published while the joined conversation's messages are read.
    store.counter, store.written = 11, [*store.written, 11]
    hub._on_numbered(change(11))
    store.messages_go.set()

    stream = conn.changes[CID]
    await settle(lambda: not stream.filling)
    assert sent_changes(conn) == [11]
