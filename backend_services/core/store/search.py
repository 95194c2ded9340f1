"""Finding messages by their words, newest first, in the conversations a user belongs to.

Each message keeps its `terms` (`core/search.py`), indexed with its time (`by_term`), and its
sender with its time (`by_sender`). A search takes one of them as its guide (of several words,
the one the last day's messages hold least; else the sender; in one conversation, its seq
index) and walks back through windows of it: a window is one index range, `{terms: word,
created_at: [from, to]}`, read newest first and cut at what is left of the page's budget, so a
query reads only part of its window, whatever the word's frequency (neither SecantusDB nor a
plain multikey index stops early at `limit` in time order over the whole index). The first
window is an hour; windows grow while they hold few messages and shrink after one cut short, so
a rare word crosses years in a few queries and a common word fills a page from its newest
window. The other conditions (the other words, phrases, the conversations, the sender; deleted
messages, system lines and tombstones never match) are checked on what was read.

A page stops at `limit` results, or after `MAX_EXAMINED` messages or `MAX_WINDOWS` index ranges
read: its cursor then says where to go on, so every page costs a bounded time.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import UpdateOne

from backend_services.core.errors import ValidationFailed
from backend_services.core.schemas import Message
from backend_services.core.search import fold, terms
from backend_services.core.store.database import Database, Document, stored_now
from backend_services.core.store.messages import to_message

FIRST_WINDOW = timedelta(hours=1)
# A window that held fewer messages than this is followed by one twice as long.
GROW_BELOW = 400
MAX_EXAMINED = 2000
# And at most this many index ranges: a walk through empty windows also ends.
MAX_WINDOWS = 48
MIN_WINDOW = timedelta(seconds=10)
# Of several words, the one the last day's messages hold least guides the walk.
PROBE_WINDOW = timedelta(days=1)
# A search in one conversation reads it this many seqs at a time at first, then more.
SEQ_WINDOW = 200
MAX_SEQ_WINDOW = 2000
# Nothing is older than this: a search that walked back to it has seen everything.
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
MAX_SEQ = 2**53
# Messages stored before search existed get their words in batches of this many seqs.
BACKFILL_BATCH = 500
BACKFILL_DONE = "search_terms"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page stopped: results continue strictly before (`created_at`, `message_id`),
    or, in one conversation, before `seq`."""

    created_at: datetime
    message_id: str
    seq: int = 0

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.message_id}|{self.seq}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        refused = ValidationFailed("That search cursor is not one this service gave.")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            moment, message_id, seq = raw.split("|")
            created_at = datetime.fromisoformat(moment)
            cursor = cls(created_at, message_id, int(seq))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise refused from exc
        if created_at.tzinfo is None or not 0 <= cursor.seq <= MAX_SEQ:
            raise refused
        if not FLOOR <= created_at <= stored_now() + timedelta(days=1):
            raise refused
        return cursor


@dataclass(frozen=True, slots=True)
class Found:
    messages: list[Message]
    next: Cursor | None  # None: nothing older matches.
    examined: int


class MessageSearch:
    def __init__(self, database: Database) -> None:
        self._db = database.db
        self._messages = database.db["messages"]

    async def index_older(self) -> int:
        """Give the messages stored before search existed their words (once per database);
        return how many were given theirs. Each conversation is read a seq range at a time,
        through its seq index, so the work grows with the messages, not their square."""
        if await self._db["meta"].find_one({"_id": BACKFILL_DONE}) is not None:
            return 0
        given = 0
        async for conversation in self._db["conversations"].find({}, {"_id": 1}):
            conversation_id = conversation["_id"]
            last = await self._last_seq(conversation_id)
            for start in range(0, last, BACKFILL_BATCH):
                span = {"$gt": start, "$lte": start + BACKFILL_BATCH}
                docs = self._messages.find(
                    {"conversation_id": conversation_id, "seq": span, "terms": {"$exists": False}},
                    {"body": 1},
                )
                # Only where the words are still missing: a message edited or deleted meanwhile
                # has its own. A tombstone (no body) gets none.
                writes = [
                    UpdateOne(
                        {"_id": doc["_id"], "terms": {"$exists": False}},
                        {"$set": {"terms": terms(doc.get("body", ""))}},
                    )
                    async for doc in docs
                ]
                if writes:
                    await self._messages.bulk_write(writes, ordered=False)
                    given += len(writes)
        await self._db["meta"].update_one(
            {"_id": BACKFILL_DONE}, {"$set": {"at": stored_now()}}, upsert=True
        )
        return given

    async def find(
        self,
        conversation_ids: Collection[str],
        *,
        words: list[str],
        phrases: list[str],
        sender_ids: Collection[str] | None = None,
        before: Cursor | None = None,
        limit: int = 20,
    ) -> Found:
        """The newest `limit` messages (before `before`) in these conversations with all these
        words and phrases (from one of `sender_ids`, if given)."""
        if not conversation_ids or (sender_ids is not None and not sender_ids):
            return Found([], None, 0)
        places = set(conversation_ids)
        wanted = set(words)

        def matches(doc: Document) -> bool:
            return (
                doc["conversation_id"] in places
                and not doc.get("deleted")
                and doc.get("system") is None
                and "body" in doc  # Not a tombstone.
                and wanted.issubset(doc.get("terms", ()))
                and (sender_ids is None or doc["sender_id"] in sender_ids)
                and all(phrase in " ".join(fold(doc["body"]).split()) for phrase in phrases)
            )

        if len(places) == 1:
            conversation_id = next(iter(places))
            last = await self._last_seq(conversation_id)
            boundary = Cursor(FLOOR, "", last + 1)
            if before is not None and before.seq:
                boundary = Cursor(FLOOR, "", min(before.seq, last + 1))
            step = functools.partial(self._seq_step, conversation_id)
        else:
            if sender_ids is not None and len(sender_ids) == 1:
                guide: Document = {"sender_id": next(iter(sender_ids))}
            elif words:
                guide = {"terms": await self._rarest(words, before)}
            else:
                raise ValidationFailed("Search for some words, or for from:someone.")
            boundary = before if before is not None else Cursor(_upper(None), "")
            step = functools.partial(self._time_step, guide)
        found: list[Document] = []
        examined = 0
        window = FIRST_WINDOW
        for _ in range(MAX_WINDOWS):
            docs, after, window = await step(boundary, window, MAX_EXAMINED - examined)
            examined += len(docs)
            found += [doc for doc in docs if matches(doc)]
            if len(found) >= limit:
                page = found[:limit]
                cut = page[-1]
                return Found(
                    [to_message(doc) for doc in page],
                    Cursor(cut["created_at"], cut["_id"], cut["seq"]),
                    examined,
                )
            if after is None:
                return Found([to_message(doc) for doc in found], None, examined)
            boundary = after
            if examined >= MAX_EXAMINED:
                break
        # Enough read for one page: the next goes on from where this one stopped.
        return Found([to_message(doc) for doc in found], boundary, examined)

    async def _last_seq(self, conversation_id: str) -> int:
        """The newest seq counted in a conversation (its counter: one document)."""
        state = await self._db["conversation_state"].find_one(
            {"_id": conversation_id}, {"last_seq": 1}
        )
        return int(state.get("last_seq", 0)) if state is not None else 0

    async def _rarest(self, words: list[str], before: Cursor | None) -> str:
        """The word to walk by: the one the newest messages hold least (the longest, among
        equals), found by counting each in the last day's messages (up to a point)."""
        if len(words) == 1:
            return words[0]
        upper = _upper(before)
        span = {"$gte": upper - PROBE_WINDOW, "$lte": upper}
        counts = {
            word: await self._messages.count_documents(
                {"terms": word, "created_at": span}, limit=GROW_BELOW
            )
            for word in words
        }
        return min(words, key=lambda word: (counts[word], -len(word)))

    async def _time_step(
        self, guide: Document, boundary: Cursor, window: timedelta, room: int
    ) -> tuple[list[Document], Cursor | None, timedelta]:
        """The messages `guide` finds through its index in the window before `boundary`,
        newest first, at most `room` of them; where to go on (None: nothing older); and the
        next window: twice as long after one that held few, half as long after one cut short."""
        lower = max(boundary.created_at - window, FLOOR)
        query = {**guide, "created_at": {"$gte": lower, "$lte": boundary.created_at}}
        cursor = self._messages.find(query).sort([("created_at", -1), ("_id", -1)]).limit(room)
        read = [doc async for doc in cursor]
        docs = [doc for doc in read if _before(doc, boundary)]
        if len(read) >= room:  # Cut short: go on from the oldest read.
            oldest = read[-1]
            return docs, Cursor(oldest["created_at"], oldest["_id"]), max(window / 2, MIN_WINDOW)
        if lower <= FLOOR:
            return docs, None, window
        return docs, Cursor(lower, ""), window * 2 if len(docs) < GROW_BELOW else window

    async def _seq_step(
        self, conversation_id: str, boundary: Cursor, window: timedelta, room: int
    ) -> tuple[list[Document], Cursor | None, timedelta]:
        """The same through one conversation's seq index: seqs before `boundary.seq`."""
        size = min(SEQ_WINDOW * max(1, round(window / FIRST_WINDOW)), MAX_SEQ_WINDOW)
        upper = boundary.seq - 1
        lower = max(upper - size, 0)
        query = {"conversation_id": conversation_id, "seq": {"$gt": lower, "$lte": upper}}
        cursor = self._messages.find(query).sort("seq", -1).limit(room)
        docs = [doc async for doc in cursor]
        if len(docs) >= room:
            return docs, Cursor(FLOOR, "", int(docs[-1]["seq"])), window
        if lower <= 0:
            return docs, None, window
        return docs, Cursor(FLOOR, "", lower + 1), window * 2


def _upper(before: Cursor | None) -> datetime:
    return before.created_at if before is not None else stored_now() + timedelta(seconds=1)


def _before(doc: Document, cursor: Cursor) -> bool:
    """Strictly before the cursor in (time, id) order, as pages are cut (an empty id: before
    the cursor's time)."""
    created_at: datetime = doc["created_at"]
    if created_at != cursor.created_at:
        return created_at < cursor.created_at
    return bool(doc["_id"] < cursor.message_id)
