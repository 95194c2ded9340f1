"""Upgrades of data written by earlier versions. Each is idempotent and runs at every start.

An upgrade must finish before the instance serves, and instances of the earlier version must not
be writing at the same time (a deployment that changes the data layout replaces every instance;
see docs/deploy.md).
"""

from __future__ import annotations

import logging

from pymongo.asynchronous.database import AsyncDatabase

from backend_services.core.store.database import Document, upsert

logger = logging.getLogger("letschat.store")

# 1: per-message state inside conversation documents; 2: in `conversation_state` and `reads`.
SCHEMA_VERSION = 2
# Before the per-message state moved to `conversation_state` and `reads`, it lived here.
LEGACY_CONVERSATION_FIELDS = ("last_seq", "last_message_seq", "last_message", "last_activity_at")


async def upgrade(db: AsyncDatabase[Document]) -> None:
    """Bring data written by earlier versions to the current layout (once: the layout's version
    is recorded, so later starts do not scan for old data)."""
    recorded = await db["meta"].find_one({"_id": "schema"})
    if recorded is not None and recorded["version"] >= SCHEMA_VERSION:
        return
    await _split_conversation_state(db)
    await _drop_index(db, "conversations", "by_member")
    await db["meta"].update_one(
        {"_id": "schema"}, {"$max": {"version": SCHEMA_VERSION}}, upsert=True
    )


async def _split_conversation_state(db: AsyncDatabase[Document]) -> None:
    moved = 0
    async for doc in db["conversations"].find({"last_seq": {"$exists": True}}):
        conversation_id = doc["_id"]
        await upsert(
            db["conversation_state"],
            conversation_id,
            {
                "$max": {"last_seq": doc["last_seq"]},
                "$setOnInsert": {
                    "last_message_seq": doc.get("last_message_seq", 0),
                    "last_message": doc.get("last_message"),
                    "last_activity_at": doc.get("last_activity_at", doc["created_at"]),
                },
            },
        )
        for user_id, seq in doc.get("reads", {}).items():
            await upsert(
                db["reads"],
                f"{conversation_id}/{user_id}",
                {
                    "$max": {"seq": seq},
                    "$setOnInsert": {"conversation_id": conversation_id, "user_id": user_id},
                },
            )
        unset = dict.fromkeys((*LEGACY_CONVERSATION_FIELDS, "reads"), "")
        await db["conversations"].update_one({"_id": conversation_id}, {"$unset": unset})
        moved += 1
    if moved:
        logger.info("moved the message state of %d conversations out of their documents", moved)


async def _drop_index(db: AsyncDatabase[Document], collection: str, name: str) -> None:
    names = {index["name"] async for index in await db[collection].list_indexes()}
    if name in names:
        await db[collection].drop_index(name)
        logger.info("dropped index %s.%s", collection, name)
