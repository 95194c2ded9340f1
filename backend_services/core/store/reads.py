"""Read markers: the highest seq each member has read in each conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend_services.core.store.database import Database, Document, find_by_ids

COLLECTION = "read_markers"


def _field(user_id: str) -> str:
    """The marker's path in its conversation's document. User ids are hex, but a path is
    built from it, so anything that could address another field is refused."""
    if not user_id or "." in user_id or user_id.startswith("$"):
        raise ValueError(f"not a user id: {user_id!r}")
    return f"seqs.{user_id}"


def max_update(markers: Mapping[str, int]) -> Document:
    """The update that moves these users' markers in a conversation's document forward."""
    return {"$max": {_field(user_id): int(seq) for user_id, seq in markers.items()}}


def max_pipeline(markers: Mapping[str, int]) -> list[Document]:
    """`max_update` as an update pipeline: the same effect, and what a round of many readers
    is written with. SecantusDB checks an update document's paths against each other, which
    takes time growing with the square of their number (a round of 250 readers of a
    1,000-member group: 37 ms of its CPU against 17.5 ms as a pipeline; one reader: 9 ms
    either way, the price of the document's size)."""
    fields = max_update(markers)["$max"]
    return [{"$set": {path: {"$max": [f"${path}", seq]} for path, seq in fields.items()}}]


class ReadMarkers:
    """One document per conversation, `{_id: <conversation>, seqs: {<user>: <seq>}}`, holding the
    marker of every member who has read in it.

    Readers of one conversation are stored together: a busy group's viewers on one instance move
    their markers in one command per round, where one document each would cost a write each.
    """

    def __init__(self, database: Database) -> None:
        self._markers = database.db[COLLECTION]

    async def advance(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move the marker forward to `seq` (never back); return whether it moved."""
        return (await self.advance_many([(conversation_id, user_id, seq)]))[0]

    async def advance_many(self, marks: Sequence[tuple[str, str, int]]) -> list[bool]:
        """Move many `(conversation, user, seq)` markers forward; return, per mark, whether it
        moved. One command per conversation (they go concurrently): a `$max` of each reader's
        field that answers with those fields as they were, so each mark knows exactly whether
        it moved, even while another instance writes the same conversation."""
        moved = [False] * len(marks)
        wanted: dict[str, dict[str, int]] = {}
        for conversation_id, user_id, seq in marks:
            if seq > 0:  # No marker already means nothing read.
                users = wanted.setdefault(conversation_id, {})
                users[user_id] = max(seq, users.get(user_id, 0))
        before = dict(
            zip(
                wanted,
                await asyncio.gather(*(self._advance(cid, users) for cid, users in wanted.items())),
                strict=True,
            )
        )
        for index, (conversation_id, user_id, seq) in enumerate(marks):
            if seq > 0:
                moved[index] = seq > before[conversation_id].get(user_id, 0)
        return moved

    async def _advance(self, conversation_id: str, users: dict[str, int]) -> dict[str, int]:
        """`$max` the users' markers in one conversation; return them as they were before."""
        update = max_pipeline(users)

        async def attempt() -> Document | None:
            return await self._markers.find_one_and_update(
                {"_id": conversation_id},
                update,
                projection=dict.fromkeys(update[0]["$set"], 1),
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )

        try:
            return _seqs(await attempt())
        except DuplicateKeyError:
            # Two first writes of this conversation's document at once: the other one created
            # it, so the update finds it now.
            return _seqs(await attempt())

    async def get(self, conversation_id: str, user_id: str) -> int:
        """The user's marker in that conversation (0: nothing read)."""
        return (await self.get_many(user_id, [conversation_id])).get(conversation_id, 0)

    async def get_many(self, user_id: str, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The user's markers in those conversations; a missing one means nothing read."""
        docs = await find_by_ids(self._markers, conversation_ids, {_field(user_id): 1})
        found = {doc["_id"]: _seqs(doc).get(user_id) for doc in docs}
        return {cid: seq for cid, seq in found.items() if seq is not None}

    async def forget(self, conversation_id: str, user_id: str) -> None:
        await self._markers.update_one({"_id": conversation_id}, {"$unset": {_field(user_id): ""}})


def _seqs(doc: Document | None) -> dict[str, int]:
    return {user_id: int(seq) for user_id, seq in (doc or {}).get("seqs", {}).items()}
