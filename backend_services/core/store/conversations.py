"""Conversations: direct pairs and groups, their members and read markers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
    conversation_not_found,
)
from backend_services.core.schemas import MAX_GROUP_MEMBERS, Conversation, GroupSummary, User
from backend_services.core.store.database import Database, Document, stored_now
from backend_services.core.store.messages import to_message
from backend_services.core.store.users import UserStore

# Unread counts stop here; the UI shows "99+" long before.
UNREAD_COUNT_CAP = 1000


def direct_id(a: str, b: str) -> str:
    """The one id of the direct conversation between two users, whoever asks first."""
    low, high = sorted((a, b))
    return f"dm:{low}:{high}"


def _user_not_found() -> NotFound:
    return NotFound("User not found.")


class ConversationStore:
    def __init__(self, database: Database, users: UserStore) -> None:
        self._conversations = database.db["conversations"]
        self._messages = database.db["messages"]
        self._users = users

    # --- creation and membership -----------------------------------------------------------

    async def open_direct(self, me: str, other: str) -> tuple[Document, bool]:
        """Return the direct conversation between `me` and `other`, and whether it is new."""
        if me == other:
            raise ValidationFailed("You can't start a direct conversation with yourself.")
        if await self._users.get(other) is None:
            raise _user_not_found()
        now = stored_now()
        new_doc = _new_conversation("direct", [me, other], now=now, created_by=me)
        new_doc.pop("_id")
        for _ in range(3):
            try:
                # Only the write that inserted reports an upserted id; a pre-image of None
                # is not proof, since a racing upsert may match the winner's insert.
                result = await self._conversations.update_one(
                    {"_id": direct_id(me, other)}, {"$setOnInsert": new_doc}, upsert=True
                )
            except DuplicateKeyError:
                continue  # Two concurrent upserts: the other one inserted; read it.
            doc = await self._conversations.find_one({"_id": direct_id(me, other)})
            if doc is not None:
                return doc, result.upserted_id is not None
        raise Conflict("Could not open the conversation; try again.")

    async def create_group(
        self, creator: str, name: str, member_ids: Iterable[str], *, is_public: bool
    ) -> Document:
        members = list(dict.fromkeys([creator, *member_ids]))
        if len(members) > MAX_GROUP_MEMBERS:
            raise ValidationFailed(f"A group can have at most {MAX_GROUP_MEMBERS} members.")
        found = await self._users.get_many(members)
        if len(found) != len(members):
            raise _user_not_found()
        doc = _new_conversation("group", members, now=stored_now(), created_by=creator, name=name)
        doc["is_public"] = is_public
        await self._conversations.insert_one(doc)
        return doc

    async def join(self, conversation_id: str, user_id: str) -> tuple[Document, bool]:
        """Join a public group; return it and whether the user was not a member before."""
        before = await self._conversations.find_one_and_update(
            {"_id": conversation_id, "kind": "group", "is_public": True},
            {"$addToSet": {"members": user_id}},
            projection={"members": 1},
        )
        if before is None:
            raise conversation_not_found()
        return await self.get_for_member(conversation_id, user_id), user_id not in before["members"]

    async def leave(self, conversation_id: str, user_id: str) -> None:
        result = await self._conversations.update_one(
            {"_id": conversation_id, "kind": "group", "members": user_id},
            {"$pull": {"members": user_id}, "$unset": {f"reads.{user_id}": ""}},
        )
        if result.matched_count == 0:
            doc = await self.get_for_member(conversation_id, user_id)  # Raises if not a member.
            if doc["kind"] == "direct":
                raise Conflict("You can't leave a direct conversation.")
            raise conversation_not_found()

    async def add_member(
        self, conversation_id: str, actor: str, user_id: str
    ) -> tuple[Document, bool]:
        """Add `user_id` to a group `actor` belongs to; return it and whether it was added."""
        doc = await self.get_for_member(conversation_id, actor)
        if doc["kind"] != "group":
            raise Conflict("A direct conversation has exactly two members; start a group instead.")
        if await self._users.get(user_id) is None:
            raise _user_not_found()
        if user_id in doc["members"]:
            return doc, False
        updated = await self._conversations.find_one_and_update(
            {
                "_id": conversation_id,
                "members": actor,
                f"members.{MAX_GROUP_MEMBERS - 1}": {"$exists": False},
            },
            {"$addToSet": {"members": user_id}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise Conflict(f"A group can have at most {MAX_GROUP_MEMBERS} members.")
        return updated, True

    # --- reads -------------------------------------------------------------------------------

    async def get_for_member(self, conversation_id: str, user_id: str) -> Document:
        """The conversation if `user_id` is a member, else the not-found a missing one gets."""
        doc = await self._conversations.find_one({"_id": conversation_id, "members": user_id})
        if doc is None:
            raise conversation_not_found()
        return doc

    async def ids_for(self, user_id: str) -> list[str]:
        cursor = self._conversations.find({"members": user_id}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def last_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The newest written seq of each conversation."""
        ids = list(conversation_ids)
        if not ids:
            return {}
        cursor = self._conversations.find({"_id": {"$in": ids}}, {"last_message_seq": 1})
        return {doc["_id"]: int(doc["last_message_seq"]) async for doc in cursor}

    async def list_for(self, user_id: str) -> list[Document]:
        cursor = self._conversations.find({"members": user_id}).sort("last_activity_at", DESCENDING)
        return [doc async for doc in cursor]

    async def search_public(self, prefix: str, *, limit: int) -> list[GroupSummary]:
        query = {
            "kind": "group",
            "is_public": True,
            "name_lower": {"$regex": f"^{re.escape(prefix.strip().lower())}"},
        }
        cursor = self._conversations.find(query).sort("last_activity_at", DESCENDING).limit(limit)
        return [
            GroupSummary(
                id=doc["_id"],
                name=doc["name"],
                member_count=len(doc["members"]),
                last_seq=doc["last_message_seq"],
            )
            async for doc in cursor
        ]

    async def mark_read(self, conversation_id: str, user_id: str, seq: int) -> int:
        """Move the user's read marker forward (never back, never past the last message)."""
        doc = await self.get_for_member(conversation_id, user_id)
        target = min(seq, doc["last_message_seq"])
        updated = await self._conversations.find_one_and_update(
            {"_id": conversation_id, "members": user_id},
            {"$max": {f"reads.{user_id}": target}},
            projection={"reads": 1},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise conversation_not_found()
        return int(updated.get("reads", {}).get(user_id, 0))

    # --- views -------------------------------------------------------------------------------

    async def views(self, docs: list[Document], viewer: str) -> list[Conversation]:
        """Wire views of `docs` as `viewer` sees them: names, members and unread counts."""
        users = await self._users.get_many(m for doc in docs for m in doc["members"])
        return [await self._view(doc, viewer, users) for doc in docs]

    async def view(self, doc: Document, viewer: str) -> Conversation:
        return (await self.views([doc], viewer))[0]

    async def _view(self, doc: Document, viewer: str, users: dict[str, User]) -> Conversation:
        members = [users[m] for m in doc["members"] if m in users]
        last_read = int(doc.get("reads", {}).get(viewer, 0))
        unread = 0
        if doc["last_message_seq"] > last_read:
            unread = await self._messages.count_documents(
                {
                    "conversation_id": doc["_id"],
                    "seq": {"$gt": last_read},
                    "sender_id": {"$ne": viewer},
                    "tombstone": {"$ne": True},
                },
                limit=UNREAD_COUNT_CAP,
            )
        if doc["kind"] == "direct":
            others = [u for u in members if u.id != viewer]
            name = others[0].display_name if others else "Deleted user"
        else:
            name = doc["name"]
        last_message = doc.get("last_message")
        return Conversation(
            id=doc["_id"],
            kind=doc["kind"],
            name=name,
            members=members,
            is_public=bool(doc.get("is_public", False)),
            last_seq=doc["last_message_seq"],
            last_message=None if last_message is None else to_message(last_message),
            unread=unread,
            last_read_seq=last_read,
            created_at=doc["created_at"],
        )


def _new_conversation(
    kind: str, members: list[str], *, now: datetime, created_by: str, name: str = ""
) -> dict[str, Any]:
    return {
        "_id": uuid.uuid4().hex,
        "kind": kind,
        "name": name,
        "name_lower": name.lower(),
        "is_public": False,
        "members": members,
        "created_by": created_by,
        "created_at": now,
        "last_activity_at": now,
        # `last_seq` is the allocation counter; `last_message_seq` the newest message written.
        "last_seq": 0,
        "last_message_seq": 0,
        "last_message": None,
        "reads": {},
    }
