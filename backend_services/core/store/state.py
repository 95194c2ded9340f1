"""What changes with every message in a conversation: its seq counter and its newest message.

This lives apart from the conversation document on purpose. A group's document carries its member
list under a multikey index, and every write to that document costs index maintenance that grows
with the group (MongoDB rewrites the entries when an indexed field changes; SecantusDB revisits
them on any update). Keeping the per-message writes on a small document of their own makes sending
to a 1,000-member group cost what sending to a pair costs.

Sending writes only the counter (and the activity time, in the same request): the newest message
is not recorded with each send but read from the messages when a view needs it and the counter
shows it may have moved, then kept here for the next view. The messages stay the only truth about
what was written, so no crash between two writes can leave the two disagreeing for long.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from datetime import datetime

from pymongo import DESCENDING

from backend_services.core.schemas import LEGACY_EPOCH
from backend_services.core.store.database import (
    Database,
    Document,
    find_by_ids,
    stored_now,
    upsert,
)


def new_epoch() -> str:
    return secrets.token_hex(8)


def epoch_of(state: Document | None) -> str:
    return LEGACY_EPOCH if state is None else str(state.get("epoch") or LEGACY_EPOCH)


class ConversationStates:
    """`{_id: conversation id, epoch, last_seq, last_message_seq, last_message,
    last_activity_at, last_change}`.

    `last_seq` is the allocation counter, and `last_activity_at` moves with it. `last_change`
    counts changes to sent messages (see `changes`).
    `last_message_seq` and `last_message` are what a view last found as the newest seq written
    (tombstones included) and the newest message: they trail the counter after a send, until
    `current` catches them up. `epoch` names the history the seqs count in; it changes when that
    history is replaced (a restore), so that cursors into the old one are known for what they
    are.
    """

    def __init__(self, database: Database) -> None:
        self._states = database.db["conversation_state"]
        self._messages = database.db["messages"]

    async def create(self, conversation_id: str, created_at: datetime) -> None:
        """Start a conversation's state at seq 0 (a no-op if it exists)."""
        await upsert(
            self._states,
            conversation_id,
            {"$setOnInsert": {"last_seq": 0, **_no_messages_since(created_at)}},
        )

    async def allocate(self, conversation_id: str) -> int:
        """The next seq of a conversation, unique even across instances; the conversation is
        active from now."""
        # The state normally exists from the conversation's creation; should that write have
        # been lost (a crash in between), the first message creates it whole.
        fresh = _no_messages_since(stored_now())
        active = {"last_activity_at": fresh.pop("last_activity_at")}  # Set, created or not.
        doc = await upsert(
            self._states,
            conversation_id,
            {"$inc": {"last_seq": 1}, "$set": active, "$setOnInsert": fresh},
            projection={"last_seq": 1},
        )
        return int(doc["last_seq"])

    async def allocate_change(self, conversation_id: str) -> int:
        """The next change number of a conversation (edits, deletions, reactions), unique even
        across instances."""
        doc = await upsert(
            self._states,
            conversation_id,
            {"$inc": {"last_change": 1}},
            projection={"last_change": 1},
        )
        return int(doc["last_change"])

    async def replace_last_message(self, conversation_id: str, changed: Document) -> None:
        """If `changed` is the newest message a view found, keep it as it is now (an edited
        or deleted preview must not show the old text)."""
        await self._states.update_one(
            {"_id": conversation_id, "last_message._id": changed["_id"]},
            {"$set": {"last_message": changed}},
        )

    async def forget_quotes(self, message_id: str, emptied: Document) -> None:
        """A message was deleted: previews of a reply that quotes it quote it `emptied`."""
        await self._states.update_many(
            {"last_message.reply_to.message_id": message_id},
            {"$set": {f"last_message.reply_to.{name}": v for name, v in emptied.items()}},
        )

    async def changes_counted(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The change counter of each conversation (as `allocated` is for seqs)."""
        states = await find_by_ids(self._states, conversation_ids, {"last_change": 1})
        return {state["_id"]: int(state.get("last_change", 0)) for state in states}

    async def current(self, conversation_ids: Iterable[str]) -> dict[str, Document]:
        """The states of these conversations with their newest message up to date: read from
        the messages wherever the counter ran ahead of it, and kept for the next caller."""
        states = await self.get_many(conversation_ids)
        behind = [state for state in states.values() if _counted_past_newest(state)]
        await asyncio.gather(*(self._catch_up(state) for state in behind))
        return states

    async def _catch_up(self, state: Document) -> None:
        """Bring `state`'s newest message forward to what the messages hold (in place)."""
        after = {"conversation_id": state["_id"], "seq": {"$gt": state["last_message_seq"]}}
        newest = await self._messages.find_one(after, sort=[("seq", DESCENDING)])
        if newest is None:  # Only seqs still being written (or lost) past the newest.
            return
        shown: Document | None = newest
        if newest.get("tombstone"):
            shown = await self._messages.find_one(
                {**after, "tombstone": {"$ne": True}}, sort=[("seq", DESCENDING)]
            )
        found: Document = {"last_message_seq": newest["seq"]}
        if shown is not None:
            found["last_message"] = shown
        state.update(found)
        # Only forward: another view may have found a newer one meanwhile.
        await self._states.update_one(
            {"_id": state["_id"], "last_message_seq": {"$lt": newest["seq"]}}, {"$set": found}
        )
        if shown is not None:
            # Edited or deleted while this was being written: then the change's own update of
            # the preview may have come first and found another message there.
            now = await self._messages.find_one({"_id": shown["_id"]})
            if now is not None and now.get("version", 0) != shown.get("version", 0):
                state["last_message"] = now
                await self.replace_last_message(state["_id"], now)

    async def allocated(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The counter of each conversation: no seq past it is written (some at or below it
        may still be on their way)."""
        states = await find_by_ids(self._states, conversation_ids, {"last_seq": 1})
        return {state["_id"]: int(state.get("last_seq", 0)) for state in states}

    async def get_many(self, conversation_ids: Iterable[str]) -> dict[str, Document]:
        return {doc["_id"]: doc for doc in await find_by_ids(self._states, conversation_ids)}

    async def renew_epoch(self, conversation_id: str, replaced: str) -> str:
        """Start a new epoch for the conversation unless someone did since it was `replaced`;
        return the epoch it has now."""
        current: Document = {"_id": conversation_id}
        if replaced == LEGACY_EPOCH:
            current["epoch"] = {"$in": [None, LEGACY_EPOCH]}
        else:
            current["epoch"] = replaced
        await self._states.update_one(current, {"$set": {"epoch": new_epoch()}})
        return epoch_of(await self._states.find_one({"_id": conversation_id}, {"epoch": 1}))

    async def renew_all_epochs(self) -> int:
        """A new epoch for every conversation: after the database was restored from a backup,
        every client's cursors may point into a history that is gone."""
        result = await self._states.update_many({}, {"$set": {"epoch": new_epoch()}})
        return result.modified_count

    async def activity(self, conversation_ids: Iterable[str]) -> dict[str, datetime]:
        """When each of the conversations was last active (its newest message, or creation)."""
        states = await find_by_ids(self._states, conversation_ids, {"last_activity_at": 1})
        return {state["_id"]: state["last_activity_at"] for state in states}

    async def most_active(self, conversation_ids: Iterable[str], *, limit: int) -> list[str]:
        """Up to `limit` of the ids, most recent activity first."""
        states = await find_by_ids(self._states, conversation_ids, {"last_activity_at": 1})
        states.sort(key=lambda state: state["last_activity_at"], reverse=True)
        return [state["_id"] for state in states[:limit]]


def _counted_past_newest(state: Document) -> bool:
    return int(state.get("last_seq", 0)) > int(state.get("last_message_seq", 0))


def _no_messages_since(moment: datetime) -> Document:
    """The state fields of a conversation with no message yet, last active at `moment`."""
    return {
        "epoch": new_epoch(),
        "last_message_seq": 0,
        "last_message": None,
        "last_activity_at": moment,
    }
