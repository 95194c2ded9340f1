"""Changes to sent messages: edits, deletions, reactions, and the log that numbers them.

A change is made to the message's own document, so a page of history always shows messages as
they are now. Each change also takes a number from its conversation's change counter (apart
from seqs: a reaction is not a message, and must not count as unread or crowd out messages on
resume) and is entered under it in `changes`, a `NumberedLog` read contiguously like the
messages. An entry names the message, nothing more: whoever reads it gets the message as it is
when read, so a deleted message's text is in no entry, and no entry can show an older state
than the one before it did. Clients keep, of two copies of a message, the higher `version`.

One change, four requests: the message (the rules are checked on what it is), the counter, the
message again (written only if its `version` is still what was checked, so concurrent changes
never undo each other), and the entry. Changes to one message take turns on each instance, so
only changes made on different instances at the same moment can lose that race (and decide
again): a popular message's reactions do not retry each other into the ground.

A writer that dies after the counter leaves a hole that readers fill after the grace period:
with the entry, if the message carries that change number (the writer got that far), else with
a tombstone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import (
    Conflict,
    EditWindowClosed,
    MessageDeleted,
    NotYourMessage,
    ServiceUnavailable,
    TooManyReactions,
    UnknownEmoji,
    conversation_not_found,
    message_not_found,
)
from backend_services.core.schemas import (
    MAX_REACTIONS_PER_MESSAGE,
    MAX_REACTIONS_PER_PERSON,
    Change,
    Message,
)
from backend_services.core.search import terms
from backend_services.core.store.database import Database, Document, find_by_ids, stored_now
from backend_services.core.store.log import NumberedLog
from backend_services.core.store.messages import normalise_body, to_message
from backend_services.core.store.state import ConversationStates
from letschat_protocol.emoji import ALLOWED as ALLOWED_EMOJI

COLLECTION = "changes"
# A change that loses its message to a concurrent change (on another instance) reads it again
# and retries, after a short random pause so that the two do not collide again; this many losses
# in a row means the message is being hammered: give up rather than spin.
MAX_CHANGE_ATTEMPTS = 8
RETRY_PAUSE_SECONDS = 0.02

# Given the message as stored, the fields a change sets (None: it changes nothing).
Mutation = Callable[[Document], Document | None]


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Changes after a cursor, in order, with no hole before `through`."""

    changes: list[Change]
    through: int
    first: int | None  # With `newest`: where the batch starts if older ones were left out.
    has_more: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may change what, and for how long (None: no limit)."""

    edit_window: timedelta | None = timedelta(hours=1)
    delete_window: timedelta | None = None
    # In a group, its creator may delete anyone's message (a moderator's right).
    creator_deletes: bool = True


class ChangeStore:
    def __init__(
        self,
        database: Database,
        states: ConversationStates,
        *,
        hole_grace: timedelta,
        policy: Policy | None = None,
    ) -> None:
        self._messages = database.db["messages"]
        self._conversations = database.db["conversations"]
        self._states = states
        self._log = NumberedLog(
            database.db[COLLECTION], hole_grace=hole_grace, filler=self._rebuild
        )
        self.policy = policy or Policy()
        # Message id -> [its lock, how many changes hold or wait for it].
        self._turns: dict[str, list[Any]] = {}

    @contextlib.asynccontextmanager
    async def _turn(self, message_id: str) -> AsyncIterator[None]:
        """Changes to one message, one at a time on this instance."""
        turn = self._turns.setdefault(message_id, [asyncio.Lock(), 0])
        turn[1] += 1
        try:
            async with turn[0]:
                yield
        finally:
            turn[1] -= 1
            if not turn[1]:
                del self._turns[message_id]

    # --- the three changes ---------------------------------------------------------------------

    async def edit(
        self, conversation_id: str, editor: str, message_id: str, body: str
    ) -> tuple[Message, int | None]:
        """Replace the body of the editor's own message; return it and the change number (None:
        the body was that already)."""
        text = normalise_body(body)
        window = self.policy.edit_window

        def mutate(doc: Document) -> Document | None:
            _require_live(doc)
            if doc["sender_id"] != editor:
                raise NotYourMessage("Only its sender can edit a message.")
            if window is not None and doc["created_at"] < stored_now() - window:
                raise EditWindowClosed()
            if doc["body"] == text:
                return None
            return {"body": text, "terms": terms(text), "edited_at": stored_now()}

        return await self._change(conversation_id, message_id, mutate)

    async def delete(
        self, conversation_id: str, deleter: str, message_id: str
    ) -> tuple[Message, int | None]:
        """Delete a message: its body, reactions and quote go from the store, and replies that
        quote it lose their excerpt. Deleting it again changes nothing (None)."""
        window = self.policy.delete_window
        moderator: bool | None = None  # Asked only when it matters.

        def mutate(doc: Document) -> Document | None:
            if doc.get("deleted"):
                return None
            if doc["sender_id"] != deleter and not moderator:
                raise NotYourMessage("Only its sender or the group's creator can delete it.")
            if not moderator and window is not None and doc["created_at"] < stored_now() - window:
                raise EditWindowClosed("That message is too old to delete.")
            return {"body": "", "terms": [], "deleted": True, "reactions": [], "reply_to": None}

        doc = await self._find(conversation_id, message_id)
        if doc["sender_id"] != deleter or window is not None:
            moderator = await self._created(conversation_id, deleter)
        msg, change = await self._change(conversation_id, message_id, mutate)
        # Wherever else its text is quoted goes too, also when it was deleted already (a
        # delete that stopped half-way is finished by the next): the quotes of it in replies
        # (no change of theirs: a client that holds the message sees it deleted, and one that
        # loads a reply later gets the emptied quote), and a conversation preview of it or of
        # a reply to it.
        await self.forget_quotes(message_id)
        if change is None:  # Deleted before: its preview too (the change above writes it).
            stored = await self._messages.find_one({"_id": message_id})
            if stored is not None:
                await self._states.replace_last_message(conversation_id, stored)
        return msg, change

    async def forget_quotes(self, message_id: str) -> None:
        """Empty every quote of a deleted message: in replies, and in conversation previews of
        a reply."""
        emptied = {"excerpt": "", "deleted": True}
        await self._messages.update_many(
            {"reply_to.message_id": message_id},
            {"$set": {f"reply_to.{name}": value for name, value in emptied.items()}},
        )
        await self._states.forget_quotes(message_id, emptied)

    async def react(
        self, conversation_id: str, user_id: str, message_id: str, emoji: str, *, add: bool
    ) -> tuple[Message, int | None]:
        """Add or take back a reaction; return the message and the change number (None: it
        was so already)."""
        if emoji not in ALLOWED_EMOJI:
            raise UnknownEmoji()

        def mutate(doc: Document) -> Document | None:
            _require_live(doc)
            reactions = [dict(r, user_ids=list(r["user_ids"])) for r in doc.get("reactions", [])]
            entry = next((r for r in reactions if r["emoji"] == emoji), None)
            mine = entry is not None and user_id in entry["user_ids"]
            if mine == add:
                return None
            if not add:
                assert entry is not None  # noqa: S101 - `mine` holds
                entry["user_ids"].remove(user_id)
                if not entry["user_ids"]:
                    reactions.remove(entry)
                return {"reactions": reactions}
            if sum(user_id in r["user_ids"] for r in reactions) >= MAX_REACTIONS_PER_PERSON:
                raise TooManyReactions(
                    f"You can put at most {MAX_REACTIONS_PER_PERSON} reactions on a message."
                )
            if entry is None:
                if len(reactions) >= MAX_REACTIONS_PER_MESSAGE:
                    raise TooManyReactions()
                reactions.append({"emoji": emoji, "user_ids": [user_id]})
            else:
                entry["user_ids"].append(user_id)
            return {"reactions": reactions}

        return await self._change(conversation_id, message_id, mutate)

    # --- making a change -----------------------------------------------------------------------

    async def _change(
        self, conversation_id: str, message_id: str, mutate: Mutation
    ) -> tuple[Message, int | None]:
        async with self._turn(message_id):
            return await self._change_in_turn(conversation_id, message_id, mutate)

    async def _change_in_turn(
        self, conversation_id: str, message_id: str, mutate: Mutation
    ) -> tuple[Message, int | None]:
        for attempt in range(MAX_CHANGE_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * attempt))  # noqa: S311
            doc = await self._find(conversation_id, message_id)
            if doc.get("system") is not None:
                raise Conflict("A system line can't be edited, deleted or reacted to.")
            fields = mutate(doc)
            if fields is None:
                return to_message(doc), None
            number = await self._states.allocate_change(conversation_id)
            version = int(doc.get("version", 0))
            written = {**fields, "version": version + 1, "change": number}
            # An update, not a findAndModify: SecantusDB answers that in time growing with the
            # collection (40 ms among 3,000 messages), an update by _id in 1 ms.
            result = await self._messages.update_one(
                # A message never changed has no version field (its version is 0).
                {"_id": message_id, "version": version if version else {"$exists": False}},
                {"$set": written},
            )
            if not result.matched_count:
                # Another change came first: fill our number at once, so readers do not wait
                # on it, and decide again on the message as it is now.
                await self._log.fill(conversation_id, number, number + 1)
                continue
            changed = {**doc, **written}
            entered = await self._enter(conversation_id, changed, number)
            if "body" in fields:
                await self._states.replace_last_message(conversation_id, changed)
            return to_message(changed), entered
        raise ServiceUnavailable("The message is changing too fast; try again.")

    async def _enter(self, conversation_id: str, changed: Document, number: int) -> int | None:
        """Enter the change under its number. If a reader filled that number meanwhile (the
        writer was slower than the grace period) with this very entry, rebuilt from the
        message, that is the number; if with a tombstone, the change takes a new one. None: a
        later change of the message is entered already, and shows this one (nothing more to
        publish)."""
        for _ in range(MAX_CHANGE_ATTEMPTS):
            try:
                await self._log.collection.insert_one(_entry(conversation_id, number, changed))
                return number
            except DuplicateKeyError:
                filled = await self._log.collection.find_one(
                    {"conversation_id": conversation_id, "seq": number}
                )
                if filled is not None and filled.get("message_id") == changed["_id"]:
                    return number
                renumbered = await self._states.allocate_change(conversation_id)
                result = await self._messages.update_one(
                    {"_id": changed["_id"], "change": number}, {"$set": {"change": renumbered}}
                )
                if not result.matched_count:
                    await self._log.fill(conversation_id, renumbered, renumbered + 1)
                    return None
                changed, number = {**changed, "change": renumbered}, renumbered
        raise ServiceUnavailable("The change could not be recorded in time; try again.")

    async def _find(self, conversation_id: str, message_id: str) -> Document:
        doc = await self._messages.find_one({"_id": message_id, "conversation_id": conversation_id})
        if doc is None or doc.get("tombstone"):
            raise message_not_found()
        return doc

    async def _created(self, conversation_id: str, user_id: str) -> bool:
        """Whether `user_id` created the group (and the policy lets creators delete)."""
        doc = await self._conversations.find_one(
            {"_id": conversation_id}, {"kind": 1, "created_by": 1}
        )
        if doc is None:
            raise conversation_not_found()
        return (
            self.policy.creator_deletes
            and doc["kind"] == "group"
            and doc.get("created_by") == user_id
        )

    async def _rebuild(self, conversation_id: str, number: int) -> Document:
        """A lost number: its entry, if the message got that far, else a tombstone."""
        changed = await self._messages.find_one(
            {"conversation_id": conversation_id, "change": number}, {"_id": 1}
        )
        if changed is not None:
            return _entry(conversation_id, number, changed)
        return {
            "_id": uuid.uuid4().hex,
            "conversation_id": conversation_id,
            "seq": number,
            "tombstone": True,
            "created_at": stored_now(),
        }

    # --- reading -------------------------------------------------------------------------------

    async def read_after(
        self, conversation_id: str, after: int, *, limit: int, newest: bool = False
    ) -> ChangeBatch:
        """Changes numbered past `after`, each with its message as it is now."""
        found = await self._log.read_after(conversation_id, after, limit=limit, newest=newest)
        ids = list(dict.fromkeys(doc["message_id"] for doc in found.docs))
        messages = {doc["_id"]: doc for doc in await find_by_ids(self._messages, ids)}
        return ChangeBatch(
            changes=[
                Change(change=doc["seq"], message=to_message(messages[doc["message_id"]]))
                for doc in found.docs
                if doc["message_id"] in messages
            ],
            through=found.through,
            first=found.first,
            has_more=found.has_more,
        )


def _require_live(doc: Document) -> None:
    if doc.get("deleted"):
        raise MessageDeleted()


def _entry(conversation_id: str, number: int, changed: Document) -> Document:
    return {
        "_id": uuid.uuid4().hex,
        "conversation_id": conversation_id,
        "seq": number,
        "message_id": changed["_id"],
        "created_at": stored_now(),
    }
