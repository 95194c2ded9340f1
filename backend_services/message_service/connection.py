"""One authenticated WebSocket: its bounded send queue, where it stands in each conversation it
follows, and the catch-ups it runs."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from backend_services import logs
from backend_services.core.errors import CloseCode
from backend_services.core.sessions import Session
from backend_services.message_service.prepared_frames import Prepared, WritePrepared, wire_of
from backend_services.message_service.sequence import Sequence, Step
from backend_services.message_service.stats import SocketStats

logger = logging.getLogger("letschat.ws")
# Where a socket made outside a hub (a test's) counts.
UNCOUNTED = SocketStats()


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Frame = str | Prepared


class Outbox:
    """A socket's frames waiting for its one writer; bounded by its `Connection`.

    Frames wait here only while the socket cannot take them at once (see `Connection.push`),
    so it is kept to a deque and one waiting future: the writer takes all that is queued at
    once, and says when it has sent them (`sent`), so that nothing overtakes them meanwhile.
    """

    __slots__ = ("_items", "_sending", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Frame | Close] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._sending = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def idle(self) -> bool:
        """Nothing queued, and the writer is not sending what it took."""
        return not self._items and not self._sending

    def put(self, item: Frame | Close) -> None:
        self._items.append(item)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._items.clear()

    def take_nowait(self) -> list[Frame | Close]:
        items = list(self._items)
        self._items.clear()
        self._sending = bool(items)
        return items

    async def take(self) -> list[Frame | Close]:
        """Everything queued, in order; waits while there is nothing. The writer calls `sent`
        when it has sent them."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.take_nowait()

    def sent(self) -> None:
        self._sending = False


@dataclass(eq=False, slots=True)
class Connection:
    session: Session
    queue_size: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Conversation id -> the stream of message frames this socket follows there: the highest
    # seq it has been sent (holes and tombstones included), and frames held while it catches up.
    streams: dict[str, Sequence[Frame]] = field(default_factory=dict)
    # The same for the conversation's changes (edits, deletions, reactions), by change number.
    changes: dict[str, Sequence[Frame]] = field(default_factory=dict)
    # Conversation id -> the highest seq this socket has read (its user's marker, as it knows it).
    read: dict[str, int] = field(default_factory=dict)
    # Conversation id -> when (a number from the hub's count) the socket last started following
    # it: a membership recheck leaves alone what was followed anew after it asked.
    followed_as: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    closing: Close | None = None
    outbox: Outbox = field(default_factory=Outbox)
    # Writes an encoded frame to the socket at once, if the server offers that (see
    # `prepared_frames`); False when the socket cannot take it now.
    write_prepared: WritePrepared | None = None
    # The instance's counts (the hub's); frames pushed here are counted in them.
    stats: SocketStats = UNCOUNTED
    # (conversation id, feed) -> the catch-up running there (outside `resume`), cancelled when
    # the socket stops following the conversation or goes.
    _catch_ups: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.session.user.id

    def push(self, frame: Frame) -> None:
        """Send a frame without waiting: written at once if the socket can take it and nothing
        is ahead of it, else queued for the writer. A socket too far behind is closed, to
        resume later."""
        if self.closing is not None:
            return
        if not (self.outbox.idle and self.write_now(frame)):
            if len(self.outbox) >= self.queue_size:
                self.close(
                    CloseCode.SLOW_CONSUMER, "too far behind; reconnect and resume", discard=True
                )
                return
            self.outbox.put(frame)
        if isinstance(frame, Prepared):
            frame.tally.n += 1  # Once per socket and message: no call (see `stats`).
        else:
            self.stats.pushed(frame)

    def write_now(self, frame: Frame) -> bool:
        """Write `frame` to the socket at once, if the server lets this socket do that now."""
        return self.write_prepared is not None and self.write_prepared(wire_of(frame))

    def close(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Ask the writer to close the socket after what is queued (or at once, with `discard`:
        the client resumes from its cursor, so nothing queued is lost to it)."""
        if self.closing is None:
            if code == CloseCode.SLOW_CONSUMER:
                self.stats.slow_consumer_closes += 1
            self.closing = Close(code, reason)
            if discard:
                self.outbox.clear()
            self.outbox.put(self.closing)

    # --- conversations -----------------------------------------------------------------------

    def follows(self, conversation_id: str) -> bool:
        return conversation_id in self.streams

    def follow(
        self,
        conversation_id: str,
        cursor: int,
        followed_as: int,
        change_cursor: int | None = None,
    ) -> None:
        """Start following from `cursor` (and `change_cursor`: None until the hub knows where
        the changes stand); live frames are held until the catch-ups `filled` them."""
        self.streams[conversation_id] = Sequence(last=cursor, filling=True)
        self.changes[conversation_id] = Sequence(last=change_cursor, filling=True)
        self.followed_as[conversation_id] = followed_as

    def unfollow(self, conversation_id: str) -> None:
        self.streams.pop(conversation_id, None)
        self.changes.pop(conversation_id, None)
        self.followed_as.pop(conversation_id, None)
        self.read.pop(conversation_id, None)
        for key in [key for key in self._catch_ups if key[0] == conversation_id]:
            task = self._catch_ups.pop(key)
            if task is not asyncio.current_task():
                task.cancel()

    def cursor(self, conversation_id: str) -> int | None:
        """The highest seq sent in a conversation followed live; None while it catches up."""
        stream = self.streams.get(conversation_id)
        return None if stream is None or stream.filling else stream.last

    def read_bound(self, conversation_id: str, seq: int) -> int | None:
        """How far a read of `seq` may move the marker: no further than this socket was sent.

        None unless the socket follows the conversation live (it may be catching up, or never
        have followed it): then only the store knows whether the user may read it at all.
        """
        cursor = self.cursor(conversation_id)
        return None if cursor is None else min(seq, cursor)

    def note_read(self, conversation_id: str, seq: int) -> bool:
        """Record a read of `seq`; False if this socket had read that far already."""
        if seq <= self.read.get(conversation_id, 0):
            return False
        self.read[conversation_id] = seq
        return True

    def offer(
        self,
        conversation_id: str,
        prev: int | None,
        seq: int,
        frame: Frame,
        streams: dict[str, Sequence[Frame]] | None = None,
    ) -> int | None:
        """Take a live frame of the socket's message `streams` (or `changes`), `prev` being
        the number the hub delivered before it (None if it does not know); returns the cursor
        to catch up from if the socket missed something."""
        stream = (self.streams if streams is None else streams).get(conversation_id)
        if stream is None:
            return None
        if stream.advance(seq, prev):  # Once per socket and message: no `Step` built.
            self.push(frame)
            return None
        step = stream.offer(seq, frame, prev)
        if step.backfill_from is not None:
            # The topic delivers in order: what this socket lacks, it missed for good.
            stream.start_fill()
        return self.send_ready(step)

    def send_ready(self, step: Step[Frame]) -> int | None:
        for frame in step.ready:
            self.push(frame)
        return step.backfill_from

    def run_catch_up(
        self, conversation_id: str, catch_up: Coroutine[Any, Any, None], feed: str = "message"
    ) -> None:
        """Run a catch-up on its own; it belongs to this socket and the conversation's feed."""
        key = (conversation_id, feed)
        # In this socket's log context, whichever request or socket's work started it.
        context = contextvars.Context()
        context.run(logs.bind, connection_id=self.id, user_id=self.user_id)
        task = asyncio.create_task(catch_up, context=context)
        self._catch_ups[key] = task
        task.add_done_callback(lambda done: self._catch_up_done(key, done))

    def _catch_up_done(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._catch_ups.get(key) is task:
            del self._catch_ups[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("a catch-up of socket %s failed", self.id, exc_info=task.exception())

    def stop(self) -> None:
        """The socket went: cancel what it was running."""
        for task in self._catch_ups.values():
            task.cancel()
        self._catch_ups.clear()
