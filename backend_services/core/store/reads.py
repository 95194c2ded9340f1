"""Read markers: the highest seq each member has read in each conversation."""

from __future__ import annotations

from collections.abc import Iterable

from backend_services.core.store.database import Database, find_by_ids, upsert


def _key(conversation_id: str, user_id: str) -> str:
    return f"{conversation_id}/{user_id}"


class ReadMarkers:
    """`{_id: "<conversation>/<user>", conversation_id, user_id, seq}`, one per member who read."""

    def __init__(self, database: Database) -> None:
        self._reads = database.db["reads"]

    async def advance(self, conversation_id: str, user_id: str, seq: int) -> int:
        """Move the marker forward to `seq` (never back); return where it now is."""
        doc = await upsert(
            self._reads,
            _key(conversation_id, user_id),
            {
                "$max": {"seq": seq},
                "$setOnInsert": {"conversation_id": conversation_id, "user_id": user_id},
            },
            projection={"seq": 1},
        )
        return int(doc["seq"])

    async def get_many(self, user_id: str, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The user's markers in those conversations; a missing one means nothing read."""
        keys = (_key(cid, user_id) for cid in conversation_ids)
        docs = await find_by_ids(self._reads, keys, {"conversation_id": 1, "seq": 1})
        return {doc["conversation_id"]: int(doc["seq"]) for doc in docs}

    async def forget(self, conversation_id: str, user_id: str) -> None:
        await self._reads.delete_one({"_id": _key(conversation_id, user_id)})
