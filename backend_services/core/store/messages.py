"""Messages and their per-conversation sequence numbers.

A message's `seq` comes from an atomic `$inc` on its conversation's state, and the message is
written before anyone is told about it. Two writers can finish out of order (seq 6 written while 5
is still on its way), and a writer can die between allocating a seq and writing it. Readers that
advance a cursor therefore read *contiguously*: they stop at a hole and wait for it to fill. A hole
whose successor is older than the grace period is declared lost by writing a tombstone into it; the
unique index on `(conversation_id, seq)` makes the late writer (if it is alive) fail and take a
fresh seq, so no message is ever skipped by a cursor and none is lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import (
    MessageTooLong,
    ServiceUnavailable,
    ValidationFailed,
)
from backend_services.core.schemas import MAX_BODY_CHARS, Message, User
from backend_services.core.store.database import Database, Document, stored_now
from backend_services.core.store.membership import require_member
from backend_services.core.store.reads import ReadMarkers
from backend_services.core.store.state import ConversationStates

MESSAGE_FIELDS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "sender_name",
    "body",
    "client_msg_id",
    "created_at",
)
# A writer that loses its seq to a tombstone takes a new one; more than this many losses in a row
# means the database is far slower than the grace period, so give up rather than spin.
MAX_SEQ_ATTEMPTS = 5
# How long past the grace period a reader keeps waiting for a hole before giving up.
HOLE_WAIT_MARGIN_SECONDS = 5.0


def to_message(doc: Document) -> Message:
    return Message(**{field: doc["_id" if field == "id" else field] for field in MESSAGE_FIELDS})


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages after a cursor, in seq order, with no hole before `through_seq`."""

    messages: list[Message]
    through_seq: int  # The cursor to continue from (tombstones included).
    first_seq: int | None  # With `newest`: where the batch starts if older ones were left out.
    has_more: bool


def normalise_body(body: str) -> str:
    """Trim a message body and enforce its limits."""
    text = body.strip()
    if not text:
        raise ValidationFailed("A message can't be empty.")
    if len(text) > MAX_BODY_CHARS:
        raise MessageTooLong()
    try:
        text.encode()
    except UnicodeEncodeError:  # A lone surrogate: valid JSON, but no BSON string can hold it.
        raise ValidationFailed("A message must be valid Unicode text.") from None
    return text


class MessageStore:
    def __init__(
        self,
        database: Database,
        states: ConversationStates,
        reads: ReadMarkers,
        *,
        hole_grace: timedelta,
    ) -> None:
        self._messages = database.db["messages"]
        self._conversations = database.db["conversations"]
        self._states = states
        self._reads = reads
        self._hole_grace = hole_grace

    async def append(
        self,
        conversation_id: str,
        sender: User,
        body: str,
        client_msg_id: str,
        *,
        known_member: bool = False,
        sender_read: bool = True,
    ) -> tuple[Message, bool]:
        """Store a message from a member; return it and whether it is new (False on a resend).

        Two requests: the counter gives the seq (and marks the conversation active), the insert
        stores the message. The conversation's newest message is not recorded here: views find
        it behind the counter (`ConversationStates.current`). `known_member` skips the
        membership query, for a caller that has just proven it (a socket that follows the
        conversation).

        A sender has read everything up to what they sent: their marker moves here unless
        `sender_read` is False (the caller moves it, with other markers).

        A resend is not looked up first: sends are almost never resends, and the unique index
        on `client_msg_id` finds the ones that are, at the price of a seq that stays a tombstone.
        """
        text = normalise_body(body)
        if not known_member:
            await require_member(self._conversations, conversation_id, sender.id)
        reader = sender.id if sender_read else None
        for _ in range(MAX_SEQ_ATTEMPTS):
            seq = await self._states.allocate(conversation_id)
            doc = {
                "_id": uuid.uuid4().hex,
                "conversation_id": conversation_id,
                "seq": seq,
                "sender_id": sender.id,
                "sender_name": sender.display_name,
                "body": text,
                "client_msg_id": client_msg_id,
                "created_at": stored_now(),
            }
            try:
                await self._messages.insert_one(doc)
            except DuplicateKeyError as exc:
                if _violated_index(exc) == "client_msg_id_unique":
                    # A resend: the message is stored. Fill our seq at once so readers do not wait.
                    await self._tombstone(conversation_id, seq, seq + 1)
                    stored = await self._find_sent(conversation_id, sender.id, client_msg_id)
                    if stored is None:  # pragma: no cover - the index just said it exists
                        raise
                    # The first send may have stopped right after its insert (its reply lost on
                    # the way back): move the marker it may not have moved.
                    if reader is not None:
                        await self._reads.advance(conversation_id, reader, stored["seq"])
                    return to_message(stored), False
                # Our seq was declared lost by a reader (or written by an instance of an older
                # version, which wrote before counting): take a fresh one.
                continue
            if reader is not None:
                await self._reads.advance(conversation_id, reader, seq)
            return to_message(doc), True
        raise ServiceUnavailable("The message could not be stored in time; send it again.")

    async def _find_sent(
        self, conversation_id: str, sender_id: str, client_msg_id: str
    ) -> Document | None:
        return await self._messages.find_one(
            {
                "conversation_id": conversation_id,
                "sender_id": sender_id,
                "client_msg_id": client_msg_id,
            }
        )

    async def page(
        self, conversation_id: str, *, before_seq: int | None, limit: int
    ) -> tuple[list[Message], bool]:
        """The `limit` newest messages before `before_seq` (or newest), ascending; has_more."""
        query: Document = {"conversation_id": conversation_id, "tombstone": {"$ne": True}}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        cursor = self._messages.find(query).sort("seq", DESCENDING).limit(limit + 1)
        docs = [doc async for doc in cursor]
        return [to_message(doc) for doc in reversed(docs[:limit])], len(docs) > limit

    async def read_after(
        self,
        conversation_id: str,
        after_seq: int,
        *,
        limit: int,
        newest: bool = False,
        before_seq: int | None = None,
    ) -> Batch:
        """Messages with seq > `after_seq`, stopping at any hole still being written.

        With `newest`, more than `limit` of them yields the newest `limit` and `first_seq` tells
        where they start; otherwise the oldest `limit` and `has_more`.
        """
        deadline = time.monotonic() + self._hole_grace.total_seconds() + HOLE_WAIT_MARGIN_SECONDS
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            docs = await self._fetch_after(conversation_id, after_seq, limit, newest, before_seq)
            truncated = len(docs) > limit
            docs = docs[-limit:] if newest else docs[:limit]
            first_seq = docs[0]["seq"] if truncated and newest else None
            expected = first_seq if first_seq is not None else after_seq + 1
            contiguous: list[Document] = []
            hole: tuple[int, Document] | None = None
            for doc in docs:
                if doc["seq"] != expected:
                    hole = (expected, doc)
                    break
                contiguous.append(doc)
                expected += 1
            if hole is None or contiguous:
                return Batch(
                    messages=[to_message(d) for d in contiguous if not d.get("tombstone")],
                    through_seq=expected - 1,
                    first_seq=first_seq,
                    has_more=hole is not None or (truncated and not newest),
                )
            hole_start, successor = hole
            if successor["created_at"] <= datetime.now(UTC) - self._hole_grace:
                await self._tombstone(conversation_id, hole_start, successor["seq"])
            else:
                # The writer of the hole is almost certainly mid-write: give it a moment.
                await asyncio.sleep(min(0.01 * 2**attempt, 0.25))
        raise ServiceUnavailable("Messages are still being written; try again.")

    async def _fetch_after(
        self, conversation_id: str, after_seq: int, limit: int, newest: bool, before_seq: int | None
    ) -> list[Document]:
        seq_range: Document = {"$gt": after_seq}
        if before_seq is not None:
            seq_range["$lt"] = before_seq
        cursor = (
            self._messages.find({"conversation_id": conversation_id, "seq": seq_range})
            .sort("seq", DESCENDING if newest else ASCENDING)
            .limit(limit + 1)
        )
        docs = [doc async for doc in cursor]
        return docs[::-1] if newest else docs

    async def _tombstone(self, conversation_id: str, start: int, stop: int) -> None:
        """Mark seqs in [start, stop) as lost, unless their message arrives first."""
        now = stored_now()
        for seq in range(start, stop):
            try:
                await self._messages.insert_one(
                    {
                        "_id": uuid.uuid4().hex,
                        "conversation_id": conversation_id,
                        "seq": seq,
                        "tombstone": True,
                        # Distinct per seq so tombstones never collide on the client_msg_id index.
                        "sender_id": "",
                        "client_msg_id": f"~lost~{seq}",
                        "created_at": now,
                    }
                )
            except DuplicateKeyError:
                continue  # The message landed after all.


def _violated_index(exc: DuplicateKeyError) -> str | None:
    details = exc.details or {}
    message = str(details.get("errmsg", exc))
    for name in ("client_msg_id_unique", "seq_unique"):
        if name in message:
            return name
    key_pattern = details.get("keyPattern") or {}
    if "client_msg_id" in key_pattern:
        return "client_msg_id_unique"
    return "seq_unique" if "seq" in key_pattern else None
