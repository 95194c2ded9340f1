"""Read markers: the highest seq each member has read in each conversation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from backend_services.core.store.database import Database, find_by_ids, upsert_changed

DUPLICATE_KEY = 11000


def _key(conversation_id: str, user_id: str) -> str:
    return f"{conversation_id}/{user_id}"


class ReadMarkers:
    """`{_id: "<conversation>/<user>", conversation_id, user_id, seq}`, one per member who read."""

    def __init__(self, database: Database) -> None:
        self._reads = database.db["reads"]

    async def advance(self, conversation_id: str, user_id: str, seq: int) -> bool:
        """Move the marker forward to `seq` (never back); return whether it moved.

        Every viewer of a conversation reads, so this is one command whether or not the marker
        moves. `$max` rather than a filter on `seq < new`: with the filter, a marker's first two
        writes racing each other can leave the lower one stored and report the higher as not moved.
        """
        if seq <= 0:
            return False  # No marker already means nothing read.
        return await upsert_changed(
            self._reads,
            _key(conversation_id, user_id),
            {
                "$max": {"seq": seq},
                "$setOnInsert": {"conversation_id": conversation_id, "user_id": user_id},
            },
        )

    async def advance_many(self, marks: Sequence[tuple[str, str, int]]) -> list[bool]:
        """Move many `(conversation, user, seq)` markers forward in one command; return, per
        mark, whether it moved.

        Each mark is an update of its marker filtered on `seq < new`, as an upsert, in one
        unordered bulk write. A marker already at or past `new` does not match, so its upsert
        collides with the stored marker on `_id`, and that mark's duplicate-key error says "did
        not move". The first writes of a new marker from two places can collide the same way;
        colliding marks are tried once more, when the marker exists and the filter is exact.
        """
        moved = [False] * len(marks)
        todo = [index for index, (_, _, seq) in enumerate(marks) if seq > 0]
        for _ in range(2):
            if not todo:
                break
            ops = []
            for index in todo:
                conversation_id, user_id, seq = marks[index]
                ops.append(
                    UpdateOne(
                        {"_id": _key(conversation_id, user_id), "seq": {"$lt": seq}},
                        {
                            "$set": {"seq": seq},
                            "$setOnInsert": {
                                "conversation_id": conversation_id,
                                "user_id": user_id,
                            },
                        },
                        upsert=True,
                    )
                )
            collided: list[int] = []
            try:
                await self._reads.bulk_write(ops, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if exc.details.get("writeConcernErrors") or any(
                    error.get("code") != DUPLICATE_KEY for error in errors
                ):
                    raise
                collided = [todo[error["index"]] for error in errors]
            for index in set(todo).difference(collided):
                moved[index] = True
            todo = collided
        return moved

    async def get(self, conversation_id: str, user_id: str) -> int:
        """The user's marker in that conversation (0: nothing read)."""
        return (await self.get_many(user_id, [conversation_id])).get(conversation_id, 0)

    async def get_many(self, user_id: str, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The user's markers in those conversations; a missing one means nothing read."""
        keys = (_key(cid, user_id) for cid in conversation_ids)
        docs = await find_by_ids(self._reads, keys, {"conversation_id": 1, "seq": 1})
        return {doc["conversation_id"]: int(doc["seq"]) for doc in docs}

    async def forget(self, conversation_id: str, user_id: str) -> None:
        await self._reads.delete_one({"_id": _key(conversation_id, user_id)})
