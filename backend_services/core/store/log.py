"""Reading a per-conversation numbered log without skipping what is still being written.

Messages (numbered by `seq`) and changes to them (numbered by change) are both such logs: a
number comes from an atomic counter and its document is written after, so two writers can
finish out of order (6 written while 5 is still on its way), and a writer can die between taking
a number and writing it. Readers that advance a cursor therefore read *contiguously*: they stop
at a hole and wait for it to fill. A hole whose successor is older than the grace period is
declared lost by filling it (with a tombstone, or whatever the log can rebuild of it); the
unique index on `(conversation_id, seq)` makes the late writer (if it is alive) fail and take a
fresh number, so no entry is ever skipped by a cursor and none is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import ServiceUnavailable
from backend_services.core.store.database import Document

# How long past the grace period a reader keeps waiting for a hole before giving up.
HOLE_WAIT_MARGIN_SECONDS = 5.0

# What a hole is filled with once declared lost: (conversation id, its number) -> the document.
Filler = Callable[[str, int], Awaitable[Document]]


@dataclass(frozen=True, slots=True)
class Slice:
    """Entries after a cursor, in order, with no hole before `through`."""

    docs: list[Document]  # Tombstones left out.
    through: int  # The cursor to continue from (tombstones included).
    first: int | None  # With `newest`: where the slice starts if older ones were left out.
    has_more: bool


class NumberedLog:
    """One collection of `{conversation_id, seq, created_at, tombstone?}` documents under a
    unique `(conversation_id, seq)` index."""

    def __init__(
        self, collection: AsyncCollection[Document], *, hole_grace: timedelta, filler: Filler
    ) -> None:
        self.collection = collection
        self._hole_grace = hole_grace
        self._filler = filler

    async def read_after(
        self,
        conversation_id: str,
        after: int,
        *,
        limit: int,
        newest: bool = False,
        before: int | None = None,
    ) -> Slice:
        """Entries numbered past `after`, stopping at any hole still being written.

        With `newest`, more than `limit` of them yields the newest `limit` and `first` tells
        where they start; otherwise the oldest `limit` and `has_more`.
        """
        deadline = time.monotonic() + self._hole_grace.total_seconds() + HOLE_WAIT_MARGIN_SECONDS
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            docs = await self._fetch_after(conversation_id, after, limit, newest, before)
            truncated = len(docs) > limit
            docs = docs[-limit:] if newest else docs[:limit]
            first = docs[0]["seq"] if truncated and newest else None
            expected = first if first is not None else after + 1
            contiguous: list[Document] = []
            hole: tuple[int, Document] | None = None
            for doc in docs:
                if doc["seq"] != expected:
                    hole = (expected, doc)
                    break
                contiguous.append(doc)
                expected += 1
            if hole is None or contiguous:
                return Slice(
                    docs=[doc for doc in contiguous if not doc.get("tombstone")],
                    through=expected - 1,
                    first=first,
                    has_more=hole is not None or (truncated and not newest),
                )
            hole_start, successor = hole
            if successor["created_at"] <= datetime.now(UTC) - self._hole_grace:
                await self.fill(conversation_id, hole_start, successor["seq"])
            else:
                # The writer of the hole is almost certainly mid-write: give it a moment.
                await asyncio.sleep(min(0.01 * 2**attempt, 0.25))
        raise ServiceUnavailable("The conversation is still being written; try again.")

    async def _fetch_after(
        self, conversation_id: str, after: int, limit: int, newest: bool, before: int | None
    ) -> list[Document]:
        numbers: Document = {"$gt": after}
        if before is not None:
            numbers["$lt"] = before
        cursor = (
            self.collection.find({"conversation_id": conversation_id, "seq": numbers})
            .sort("seq", DESCENDING if newest else ASCENDING)
            .limit(limit + 1)
        )
        docs = [doc async for doc in cursor]
        return docs[::-1] if newest else docs

    async def fill(self, conversation_id: str, start: int, stop: int) -> None:
        """Declare numbers in [start, stop) lost, unless their entry arrives first."""
        for number in range(start, stop):
            try:
                await self.collection.insert_one(await self._filler(conversation_id, number))
            except DuplicateKeyError:
                continue  # The entry landed after all.
