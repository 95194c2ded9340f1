"""Messages and their per-conversation sequence numbers.

A message's `seq` comes from an atomic `$inc` on its conversation's state, and the message is
written before anyone is told about it. The messages are a `NumberedLog`: readers read them
contiguously, and a seq lost by its writer becomes a tombstone, so no message is ever skipped by
a cursor and none is lost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import (
    MessageDeleted,
    MessageTooLong,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from backend_services.core.schemas import MAX_BODY_CHARS, REPLY_EXCERPT_CHARS, Message, User
from backend_services.core.search import terms
from backend_services.core.store.database import Database, Document, stored_now
from backend_services.core.store.log import NumberedLog
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
# What a message may have besides, once replied with or changed (absent: at its default).
LATER_FIELDS = ("version", "edited_at", "deleted", "reactions", "reply_to", "system")


def to_message(doc: Document) -> Message:
    fields = {field: doc["_id" if field == "id" else field] for field in MESSAGE_FIELDS}
    for field in LATER_FIELDS:
        if field in doc:
            fields[field] = doc[field]
    return Message(**fields)


def reply_preview(doc: Document) -> Document:
    """How a reply quotes the message it answers (stored with the reply)."""
    return {
        "message_id": doc["_id"],
        "seq": doc["seq"],
        "sender_id": doc["sender_id"],
        "sender_name": doc["sender_name"],
        "excerpt": doc["body"][:REPLY_EXCERPT_CHARS],
    }


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
        self._log = NumberedLog(self._messages, hole_grace=hole_grace, filler=_lost_message)
        self._conversations = database.db["conversations"]
        self._states = states
        self._reads = reads

    async def append(
        self,
        conversation_id: str,
        sender: User,
        body: str,
        client_msg_id: str,
        *,
        known_member: bool = False,
        sender_read: bool = True,
        reply_to: str | None = None,
        system: Document | None = None,
    ) -> tuple[Message, bool]:
        """Store a message from a member; return it and whether it is new (False on a resend).

        Two requests: the counter gives the seq (and marks the conversation active), the insert
        stores the message. The conversation's newest message is not recorded here: views find
        it behind the counter (`ConversationStates.current`). `known_member` skips the
        membership query, for a caller that has just proven it (a socket that follows the
        conversation).

        A sender has read everything up to what they sent: their marker moves here unless
        `sender_read` is False (the caller moves it, with other markers).

        A reply (`reply_to`: the id of a message in the conversation) costs one more request:
        the answered message, whose excerpt the reply keeps.

        A resend is not looked up first: sends are almost never resends, and the unique index
        on `client_msg_id` finds the ones that are, at the price of a seq that stays a tombstone.
        """
        text = normalise_body(body)
        if not known_member:
            await require_member(self._conversations, conversation_id, sender.id)
        reader = sender.id if sender_read else None
        extra: Document = {}
        if system is not None:  # A system line: not found by search, not changed by anyone.
            extra |= {"system": system, "terms": []}
        if reply_to is not None:
            extra["reply_to"] = await self._preview_of(conversation_id, reply_to)
        for _ in range(MAX_SEQ_ATTEMPTS):
            seq = await self._states.allocate(conversation_id)
            doc = {
                "_id": uuid.uuid4().hex,
                "conversation_id": conversation_id,
                "seq": seq,
                "sender_id": sender.id,
                "sender_name": sender.display_name,
                "body": text,
                "terms": terms(text),
                "client_msg_id": client_msg_id,
                "created_at": stored_now(),
                **extra,
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
            if reply_to is not None:
                await self._unquote_if_deleted(doc)
            return to_message(doc), True
        raise ServiceUnavailable("The message could not be stored in time; send it again.")

    async def _preview_of(self, conversation_id: str, message_id: str) -> Document:
        answered = await self._messages.find_one(
            {"_id": message_id, "conversation_id": conversation_id, "tombstone": {"$ne": True}}
        )
        if answered is None:
            raise NotFound("The message you reply to is not in this conversation.")
        if answered.get("deleted"):
            raise MessageDeleted("The message you reply to was deleted.")
        return reply_preview(answered)

    async def _unquote_if_deleted(self, reply: Document) -> None:
        """The answered message may have been deleted after its excerpt was read and before
        the reply was stored, its deletion then emptying the quotes that were there: if so,
        empty this one (either this read sees the deletion, or the deletion sees the reply)."""
        quote = reply["reply_to"]
        answered = await self._messages.find_one({"_id": quote["message_id"]}, {"deleted": 1})
        if answered is not None and answered.get("deleted"):
            quote.update(excerpt="", deleted=True)
            await self._messages.update_one(
                {"_id": reply["_id"]},
                {"$set": {"reply_to.excerpt": "", "reply_to.deleted": True}},
            )

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
        found = await self._log.read_after(
            conversation_id, after_seq, limit=limit, newest=newest, before=before_seq
        )
        return Batch(
            messages=[to_message(doc) for doc in found.docs],
            through_seq=found.through,
            first_seq=found.first,
            has_more=found.has_more,
        )

    async def _tombstone(self, conversation_id: str, start: int, stop: int) -> None:
        """Mark seqs in [start, stop) as lost, unless their message arrives first."""
        await self._log.fill(conversation_id, start, stop)


async def _lost_message(conversation_id: str, seq: int) -> Document:
    return {
        "_id": uuid.uuid4().hex,
        "conversation_id": conversation_id,
        "seq": seq,
        "tombstone": True,
        # Distinct per seq so tombstones never collide on the client_msg_id index.
        "sender_id": "",
        "client_msg_id": f"~lost~{seq}",
        "created_at": stored_now(),
    }


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
