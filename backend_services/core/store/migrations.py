"""Upgrades of data written by earlier versions. Each is idempotent and runs at every start.

An upgrade must finish before the instance serves, and instances of the earlier version must not
be writing at the same time (a deployment that changes the data layout replaces every instance;
see docs/deploy.md).
"""

from __future__ import annotations

import logging

from pymongo.asynchronous.database import AsyncDatabase

from backend_services.core.store.database import Document, upsert
from backend_services.core.store.reads import COLLECTION as READ_MARKERS
from backend_services.core.store.reads import max_update

logger = logging.getLogger("letschat.store")

# 1: per-message state inside conversation documents; 2: in `conversation_state` and `reads`
# (one document per member and conversation); 3: read markers in `read_markers`, one document per
# conversation; 4: sign-in sessions (`sessions`) instead of revoked access tokens.
SCHEMA_VERSION = 4
# Version 2's read markers: `{_id: "<conversation>/<user>", conversation_id, user_id, seq}`.
LEGACY_READS = "reads"
# Version 3's logged-out access tokens. Tokens of that version carry no session and are refused,
# so their revocations can go.
LEGACY_REVOKED_TOKENS = "revoked_tokens"
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
    await _gather_read_markers(db)
    await db.drop_collection(LEGACY_REVOKED_TOKENS)
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
        markers = doc.get("reads", {})
        if markers:
            await _max_markers(db, conversation_id, markers)
        unset = dict.fromkeys((*LEGACY_CONVERSATION_FIELDS, "reads"), "")
        await db["conversations"].update_one({"_id": conversation_id}, {"$unset": unset})
        moved += 1
    if moved:
        logger.info("moved the message state of %d conversations out of their documents", moved)


async def _gather_read_markers(db: AsyncDatabase[Document]) -> None:
    """Version 2's one document per marker, into one per conversation; then drop them."""
    by_conversation: dict[str, dict[str, int]] = {}
    async for doc in db[LEGACY_READS].find({}, {"conversation_id": 1, "user_id": 1, "seq": 1}):
        markers = by_conversation.setdefault(doc["conversation_id"], {})
        markers[doc["user_id"]] = max(int(doc["seq"]), markers.get(doc["user_id"], 0))
    for conversation_id, markers in by_conversation.items():
        await _max_markers(db, conversation_id, markers)
    if by_conversation:
        logger.info("gathered the read markers of %d conversations", len(by_conversation))
    await db.drop_collection(LEGACY_READS)


async def _max_markers(
    db: AsyncDatabase[Document], conversation_id: str, markers: dict[str, int]
) -> None:
    await upsert(db[READ_MARKERS], conversation_id, max_update(markers))


async def _drop_index(db: AsyncDatabase[Document], collection: str, name: str) -> None:
    names = {index["name"] async for index in await db[collection].list_indexes()}
    if name in names:
        await db[collection].drop_index(name)
        logger.info("dropped index %s.%s", collection, name)
