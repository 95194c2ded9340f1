"""Read markers from this instance's sockets, written together.

Every viewer of a busy conversation reads every couple of seconds, so one store command per
`read` would make reads most of the store's work (a send is a handful of commands, shared by every
recipient; a read is one command per viewer). Reads wait here instead, coalesced per marker to
the highest seq, and every `interval` they are stored together: one command per conversation
(`ReadMarkers.advance_many`). The markers that moved are then echoed to their users' other
sockets together (see `Hub.publish_reads`).

A conversation's markers are written at most once every `repeat` seconds: a read in a
conversation quiet for that long goes in the next round, while the readers of a busy one (each
reading every 2 s as messages come) are written together every `repeat` seconds, each with the
newest seq they read. A round's command costs the store about what the conversation's document
weighs (its members' markers), little more for 250 readers than for one: a 1,000-member group
read by everyone costs one command per `repeat` and instance, not one per `interval`.

A read that waits here is as good as stored for its own socket, which already shows it read. If
the instance dies in between, at most `repeat` (or `interval`) of reads is lost: the markers
stay a little behind and the next read moves them. If the store fails, the reads wait for the
next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pymongo.errors import PyMongoError

from backend_services.core.store import ReadMarkers

logger = logging.getLogger("letschat.reads")


class Echo(NamedTuple):
    """A marker that moved, for the user's other sockets."""

    user_id: str
    conversation_id: str
    seq: int
    origin: str | None  # The socket that read it (it knows already).


# Echoes the markers a round moved, all at once.
Publish = Callable[[list[Echo]], Awaitable[None]]
# How long the last write may take on shutdown before the reads still waiting are given up.
CLOSE_SECONDS = 5.0


@dataclass(slots=True)
class _Mark:
    seq: int
    origin: str | None
    echo: bool


class ReadBatcher:
    def __init__(
        self, markers: ReadMarkers, publish: Publish, *, interval: float, repeat: float = 0.0
    ) -> None:
        self._markers = markers
        self._publish = publish
        self._interval = interval
        self._repeat = repeat
        # (conversation id, user id) -> the highest seq read there since the last write.
        self._pending: dict[tuple[str, str], _Mark] = {}
        # Conversation id -> when its markers were last written, for the last `repeat` seconds.
        self._written: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None

    def add(
        self,
        user_id: str,
        conversation_id: str,
        seq: int,
        origin: str | None,
        *,
        echo: bool = True,
    ) -> None:
        """Queue a read of `seq` (from the socket `origin`) for the next write. Without `echo`
        the user's other sockets are not told: a sender's own message tells them already."""
        key = (conversation_id, user_id)
        mark = self._pending.get(key)
        if mark is None or seq > mark.seq:
            self._pending[key] = _Mark(seq, origin, echo)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the rounds and write what is still waiting (bounded)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.flush(everything=True)
        except (TimeoutError, PyMongoError):
            logger.warning("%d read markers were not stored on shutdown", len(self._pending))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._interval)
            self._wake.clear()
            try:
                await self.flush()
                if self._pending:
                    self._wake.set()  # Markers written too recently go in a later round.
            except PyMongoError:
                logger.warning("store unavailable; %d read markers wait", len(self._pending))
                self._wake.set()
            except Exception:
                logger.exception("could not store read markers; they wait for the next round")
                self._wake.set()

    async def flush(self, *, everything: bool = False) -> None:
        """Write the waiting reads (one command per conversation), then echo the markers that
        moved. Those of a conversation written less than `repeat` seconds ago keep waiting,
        unless `everything`."""
        now = time.monotonic()
        self._written = {c: at for c, at in self._written.items() if now - at < self._repeat}
        due = [key for key in self._pending if everything or key[0] not in self._written]
        if not due:
            return
        batch = {key: self._pending.pop(key) for key in due}
        keys = list(batch)
        try:
            moved = await self._markers.advance_many([(*key, batch[key].seq) for key in keys])
        except BaseException:
            # Back they go, behind anything read meanwhile, for the next round.
            for key, mark in batch.items():
                newer = self._pending.get(key)
                if newer is None or newer.seq < mark.seq:
                    self._pending[key] = mark
            raise
        if self._repeat > 0:
            self._written.update(
                dict.fromkeys((conversation_id for conversation_id, _ in keys), now)
            )
        echoes = [
            Echo(user_id, conversation_id, mark.seq, mark.origin)
            for (conversation_id, user_id), did_move in zip(keys, moved, strict=True)
            if did_move and (mark := batch[conversation_id, user_id]).echo
        ]
        if echoes:
            await self._publish(echoes)
