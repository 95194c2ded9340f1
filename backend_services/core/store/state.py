"""What changes with every message in a conversation: its seq counter and its newest message.

This lives apart from the conversation document on purpose. A group's document carries its member
list under a multikey index, and every write to that document costs index maintenance that grows
with the group (MongoDB rewrites the entries when an indexed field changes; SecantusDB revisits
them on any update). Keeping the per-message writes on a small document of their own makes sending
to a 1,000-member group cost what sending to a pair costs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

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
    last_activity_at}`.

    `last_seq` is the allocation counter; `last_message_seq` the newest message written, which
    can trail the counter while a writer is mid-write. `epoch` names the history the seqs count
    in; it changes when that history is replaced (a restore), so that cursors into the old one
    are known for what they are.
    """

    def __init__(self, database: Database) -> None:
        self._states = database.db["conversation_state"]

    async def create(self, conversation_id: str, created_at: datetime) -> None:
        """Start a conversation's state at seq 0 (a no-op if it exists)."""
        await upsert(
            self._states,
            conversation_id,
            {"$setOnInsert": {"last_seq": 0, **_no_messages_since(created_at)}},
        )

    async def allocate(self, conversation_id: str) -> int:
        """The next seq of a conversation, unique even across instances."""
        # The state normally exists from the conversation's creation; should that write have
        # been lost (a crash in between), the first message creates it whole.
        doc = await upsert(
            self._states,
            conversation_id,
            {
                "$inc": {"last_seq": 1},
                "$setOnInsert": _no_messages_since(stored_now()),
            },
            projection={"last_seq": 1},
        )
        return int(doc["last_seq"])

    async def record(self, conversation_id: str, message: Document) -> None:
        """Make `message` the newest one unless a later seq got there first, and keep the
        counter at or past its seq (it may have been written at a hinted seq, without
        `allocate`; a later seq that got there first was recorded the same way)."""
        await self._states.update_one(
            {"_id": conversation_id, "last_message_seq": {"$lt": message["seq"]}},
            {
                "$set": {
                    "last_message_seq": message["seq"],
                    "last_message": message,
                    "last_activity_at": message["created_at"],
                },
                "$max": {"last_seq": message["seq"]},
            },
        )

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


def _no_messages_since(moment: datetime) -> Document:
    """The state fields of a conversation with no message yet, last active at `moment`."""
    return {
        "epoch": new_epoch(),
        "last_message_seq": 0,
        "last_message": None,
        "last_activity_at": moment,
    }
